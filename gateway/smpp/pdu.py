"""SMPP 3.4 PDUs as plain values, on smpplib's codec: bytes in, Pdu values out, and back.

Rules:
- Nothing here does I/O. `Framer` cuts a byte stream into PDUs by command_length; `decode` and
  `encode` turn one frame into a `Pdu` and back.
- smpplib codes the header and the mandatory parameters. Its TLV code trusts its own size table
  rather than the length on the wire, raises on unknown tags and drops flag TLVs, so TLVs are
  coded here, by smpplib's names, with the length the wire gives.
- smpplib traps kept inside this module: parsing takes a sequence number from the client it is
  given (a throwaway one here), and `sequence=` is ignored when building: it is set afterwards.
- A frame that cannot be decoded becomes a `BadPdu` that says how to answer it; the stream goes
  on. A command_length out of bounds means framing is lost: `Framer.broken` and nothing more.
- A bind's password (SECRET_FIELDS) never shows in a Pdu's repr or in a PduError.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from smpplib import command, command_codes, consts, smpp
from smpplib.exceptions import UnknownCommandError
from smpplib.ptypes import flag, ostr

HEADER_LENGTH = 16
MAX_LENGTH = 64 * 1024
MAX_SEQUENCE = 0x7FFFFFFF

ESME_ROK = consts.SMPP_ESME_ROK
ESME_RINVCMDLEN = consts.SMPP_ESME_RINVCMDLEN
ESME_RINVCMDID = consts.SMPP_ESME_RINVCMDID
ESME_RINVBNDSTS = consts.SMPP_ESME_RINVBNDSTS
ESME_RBINDFAIL = consts.SMPP_ESME_RBINDFAIL
ESME_RSYSERR = consts.SMPP_ESME_RSYSERR
ESME_RINVPASWD = consts.SMPP_ESME_RINVPASWD
ESME_RMSGQFUL = consts.SMPP_ESME_RMSGQFUL
ESME_RTHROTTLED = consts.SMPP_ESME_RTHROTTLED
ESME_RX_T_APPN = consts.SMPP_ESME_RX_T_APPN
ESME_RINVOPTPARSTREAM = consts.SMPP_ESME_RINVOPTPARSTREAM
ESME_RINVPARLEN = consts.SMPP_ESME_RINVPARLEN

STATUS_NAMES: Mapping[int, str] = {
    getattr(consts, name): name.removeprefix("SMPP_")
    for name in dir(consts)
    if name.startswith("SMPP_ESME_")
}
# Statuses after which the same PDU may succeed later (CONVENTIONS: SMPP 3.4); anything else is final.
TEMPORARY_STATUSES = frozenset({0x58, 0x08, 0x14, 0x45, 0x67, 0xFE, 0xFF, 0x64})

SECRET_FIELDS = frozenset({"password"})  # never in a repr, a log line or an error message

# The commands smpplib can build and parse.
COMMANDS = frozenset({
    "bind_transmitter", "bind_transmitter_resp", "bind_receiver", "bind_receiver_resp",
    "bind_transceiver", "bind_transceiver_resp", "data_sm", "data_sm_resp", "generic_nack",
    "submit_sm", "submit_sm_resp", "deliver_sm", "deliver_sm_resp", "query_sm", "query_sm_resp",
    "unbind", "unbind_resp", "enquire_link", "enquire_link_resp", "alert_notification",
})


def status_name(status: int) -> str:
    """ESME_RTHROTTLED for 0x58; vendor statuses as hex."""
    return STATUS_NAMES.get(status, f"0x{status:08X}")


def is_response(command_name: str) -> bool:
    return command_name == "generic_nack" or command_name.endswith("_resp")


def _tlv_types() -> dict[str, tuple[type, int | None]]:
    """TLV name -> (smpplib type, size for integers), from smpplib's tables, spec corrections last."""
    table: dict[str, tuple[type, int | None]] = {}
    for cls in (command.DataSM, command.SubmitSM, command.DeliverSM, command.DataSMResp,
                command.BindTransmitterResp, command.AlertNotification):
        for name, param in cls.params.items():
            if name in consts.OPTIONAL_PARAMS and name not in table:
                table[name] = (param.type, getattr(param, "size", None))
    table["delivery_failure_reason"] = (int, 1)  # smpplib says a string; SMPP 3.4 5.3.2.33: Integer(1)
    table["network_error_code"] = (ostr, 3)
    return table


TLV_TYPES = _tlv_types()
TLV_TAGS: Mapping[str, int] = dict(consts.OPTIONAL_PARAMS)
TLV_NAMES: Mapping[int, str] = {tag: name for name, tag in consts.OPTIONAL_PARAMS.items()}


class PduError(ValueError):
    """A PDU that cannot be encoded; the message names the command and the field."""


@dataclass(frozen=True)
class Pdu:
    """One SMPP PDU: header, mandatory fields (strings decoded) and TLVs by smpplib's names."""

    command: str
    sequence: int
    status: int = ESME_ROK
    fields: Mapping[str, object] = field(default_factory=dict)
    tlvs: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return is_response(self.command)

    def get(self, name: str, default: object = None) -> object:
        """A mandatory field or a TLV by name."""
        return self.fields.get(name, self.tlvs.get(name, default))

    def __repr__(self) -> str:
        fields = {name: _shown(name, value) for name, value in self.fields.items()}
        return (f"Pdu(command={self.command!r}, sequence={self.sequence}, status={self.status}, "
                f"fields={fields!r}, tlvs={dict(self.tlvs)!r})")


def _shown(name: str, value: object) -> object:
    """`value` as a repr or an error message may show it: a bind's password never."""
    return "********" if name in SECRET_FIELDS else value


@dataclass(frozen=True)
class BadPdu:
    """A frame that could not be decoded, and how to answer it.

    `status` is the generic_nack status; `fatal` means framing is lost and the link must go."""

    reason: str
    status: int
    sequence: int = 0
    command_id: int | None = None
    fatal: bool = False

    @property
    def is_response(self) -> bool:
        return self.command_id is not None and bool(self.command_id & 0x80000000)


class _Throwaway:
    """Stands in for smpplib's client, which hands out sequence numbers as PDUs are made."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def _params(command_name: str) -> tuple[dict, tuple[str, ...]]:
    made = command.factory(command_name, client=_Throwaway())
    mandatory = tuple(name for name in made.params_order
                      if not made.field_is_optional(name) and name != "sm_length")
    return made.params, mandatory


_SHAPES = {name: _params(name) for name in COMMANDS}
# One pristine smpplib command object per command: `_fresh` copies it, which is what
# smpp.make_pdu would build, without its constructor's cost (23 µs of a 60 µs deliver_sm decode).
# Their params_order keeps the mandatory fields only: TLVs are coded here, never set on smpplib's
# objects, and smpplib stops at the first optional field when parsing; its generate_params,
# though, walked every optional one (half of a submit_sm's encoding time).
_PRISTINE = {name: smpp.make_pdu(name, client=_Throwaway()) for name in COMMANDS}
for _name, _made in _PRISTINE.items():
    _made.params_order = tuple(f for f in type(_made).params_order if not _made.field_is_optional(f))


def _fresh(command_name: str) -> command.Command:
    pristine = _PRISTINE[command_name]
    made = object.__new__(type(pristine))
    made.__dict__.update(pristine.__dict__)
    return made


def _defaults(command_name: str) -> dict[str, object]:
    params, mandatory = _SHAPES[command_name]
    values: dict[str, object] = {}
    for name in mandatory:
        kind = params[name].type
        values[name] = "" if kind is str else b"" if kind is ostr else 0
    if "interface_version" in values:
        values["interface_version"] = consts.SMPP_VERSION_34
    return values


_DEFAULTS = {name: _defaults(name) for name in COMMANDS}


def defaults(command_name: str) -> dict[str, object]:
    """The mandatory fields of `command_name` with their empty values, as decode returns them."""
    return dict(_DEFAULTS[command_name])


def request(command_name: str, sequence: int, tlvs: Mapping[str, object] | None = None,
            **fields: object) -> Pdu:
    """A request PDU with every mandatory field present (defaults filled in)."""
    unknown = set(fields) - set(defaults(command_name))
    if unknown:
        raise PduError(f"{command_name}: no mandatory field {sorted(unknown)}")
    return Pdu(command_name, sequence, ESME_ROK, defaults(command_name) | fields, dict(tlvs or {}))


def response(to: Pdu, status: int = ESME_ROK, **fields: object) -> Pdu:
    """The response to `to`, echoing its sequence number."""
    name = f"{to.command}_resp"
    return Pdu(name, to.sequence, status, defaults(name) | fields)


def generic_nack(sequence: int, status: int) -> Pdu:
    return Pdu("generic_nack", sequence, status)


# --- encoding ---------------------------------------------------------------------------------

def encode(pdu: Pdu) -> bytes:
    """The wire bytes of `pdu`; PduError names a field that does not fit."""
    tlvs = _validated(pdu)
    built = _fresh(pdu.command)
    for name, value in pdu.fields.items():
        setattr(built, name, value)
    built.sequence = pdu.sequence
    built.status = pdu.status
    body = built.generate_params() + tlvs
    code = command_codes.get_command_code(pdu.command)
    return struct.pack(">LLLL", HEADER_LENGTH + len(body), code, pdu.status, pdu.sequence) + body


def validate(pdu: Pdu) -> None:
    """Raise PduError if `pdu` could not be encoded (what encode checks, without building it)."""
    _validated(pdu)


def _validated(pdu: Pdu) -> bytes:
    """Check every field; the encoded TLVs."""
    if pdu.command not in COMMANDS:
        raise PduError(f"{pdu.command}: not an SMPP 3.4 command smpplib can build")
    if not 0 <= pdu.sequence <= 0xFFFFFFFF:
        raise PduError(f"{pdu.command}: sequence {pdu.sequence} out of range")
    _check_fields(pdu)
    return b"".join(_encode_tlv(pdu.command, n, v) for n, v in pdu.tlvs.items())


def _check_fields(pdu: Pdu) -> None:
    params, mandatory = _SHAPES[pdu.command]
    for name, value in pdu.fields.items():
        if name not in mandatory:
            raise PduError(f"{pdu.command}.{name}: not a mandatory field (TLVs go in tlvs)")
        _check_value(pdu.command, name, params[name], value)


def _check_value(command_name: str, name: str, param: command.Param, value: object) -> None:
    where = f"{command_name}.{name}"
    if param.type is str:
        if not isinstance(value, str) or not value.isascii() or "\0" in value:
            raise PduError(f"{where}: must be an ASCII string without NUL, got {_shown(name, value)!r}")
        if len(value) >= param.max:
            raise PduError(f"{where}: at most {param.max - 1} characters, got {len(value)}")
    elif param.type is ostr:
        if not isinstance(value, bytes) or len(value) > param.max:
            raise PduError(f"{where}: must be bytes of at most {param.max} octets")
    elif not isinstance(value, int) or not 0 <= value < 256 ** param.size:
        raise PduError(f"{where}: must be an integer of {param.size} octet(s), got {value!r}")


def _encode_tlv(command_name: str, name: str, value: object) -> bytes:
    if name not in TLV_TYPES:
        raise PduError(f"{command_name}: unknown TLV {name!r}")
    kind, size = TLV_TYPES[name]
    where = f"{command_name}.{name}"
    if kind is int:
        assert size is not None  # every integer TLV has a size (_tlv_types)
        if not isinstance(value, int) or not 0 <= value < 256 ** size:
            raise PduError(f"{where}: must be an integer of {size} octet(s), got {value!r}")
        raw = value.to_bytes(size, "big")
    elif kind is str:
        if not isinstance(value, str) or not value.isascii() or "\0" in value:
            raise PduError(f"{where}: must be an ASCII string without NUL, got {value!r}")
        raw = value.encode("ascii") + b"\0"
    elif kind is flag:
        raw = b""
    else:
        if not isinstance(value, bytes) or len(value) > 0xFFFF:
            raise PduError(f"{where}: must be bytes of at most 65535 octets")
        raw = value
    return struct.pack(">HH", TLV_TAGS[name], len(raw)) + raw


# --- decoding ---------------------------------------------------------------------------------

def decode(frame: bytes) -> Pdu | BadPdu:
    """One complete frame (command_length included) as a Pdu, or a BadPdu saying why not."""
    if len(frame) < HEADER_LENGTH:
        return BadPdu("shorter than a PDU header", ESME_RINVCMDLEN, fatal=True)
    length, code, status, sequence = struct.unpack_from(">LLLL", frame)
    if length != len(frame):
        return BadPdu(f"command_length {length} but {len(frame)} octets", ESME_RINVCMDLEN, sequence, code)
    try:
        name = command_codes.get_command_name(code)
    except UnknownCommandError:
        name = None
    if name not in COMMANDS:
        return BadPdu(f"command_id 0x{code:08X} not supported", ESME_RINVCMDID, sequence, code)
    try:
        fields, tlvs = _parse_body(name, frame)
    except (ValueError, struct.error, UnicodeDecodeError) as err:
        return BadPdu(f"{name}: {err}", ESME_RINVOPTPARSTREAM, sequence, code)
    return Pdu(name, sequence, status, fields, tlvs)


def _parse_body(name: str, frame: bytes) -> tuple[dict[str, object], dict[str, object]]:
    """The mandatory fields and TLVs of a frame, read by smpplib's tables (its fields, their order, types and
    sizes) and its rules: the fields end where the body does, a C-string ends at its NUL, an octet string is as
    long as its length field says. Read here, not by smpplib's Command.parse: that sets an attribute and looks
    up its Param for each field, 20 µs of a deliver_sm against 6 here (tests/gateway/smpp/test_pdu.py compares
    the two on any frame). Strings come back decoded from latin-1, octet strings as bytes."""
    fields = defaults(name)
    pos, end = HEADER_LENGTH, len(frame)
    for field_name, kind, size, length_field in _LAYOUTS[name]:
        if pos == end:
            break
        if kind is int:
            if pos + size > end:
                raise ValueError(f"{field_name}: {size}-octet integer cut short")
            fields[field_name] = int.from_bytes(frame[pos:pos + size], "big")
            pos += size
        elif kind is str:
            nul = frame.find(b"\0", pos)
            if nul < 0:
                raise ValueError(f"{field_name}: C-string without a NUL terminator")
            fields[field_name] = frame[pos:nul].decode("latin-1")
            pos = nul + 1
        else:  # an octet string, as long as its length field
            length = int(fields[length_field])  # type: ignore[call-overload]
            fields[field_name] = frame[pos:pos + length]
            pos += length
    if len(fields.get("short_message") or b"") != (fields.get("sm_length") or 0):  # type: ignore[arg-type]
        raise ValueError("short_message shorter than sm_length")
    fields.pop("sm_length", None)
    return fields, parse_tlvs(frame[pos:]) if pos < end else {}


def _layout(command_name: str) -> tuple[tuple[str, type, int, str], ...]:
    """smpplib's mandatory fields of a command, in order: (name, type, integer size, length field)."""
    made = _PRISTINE[command_name]
    return tuple((f, made.params[f].type, getattr(made.params[f], "size", 0), getattr(made.params[f], "len_field", ""))
                 for f in made.params_order)


_LAYOUTS = {name: _layout(name) for name in COMMANDS}


def parse_tlvs(data: bytes) -> dict[str, object]:
    """TLVs by smpplib's names (unknown tags as '0x1403' with raw bytes), lengths from the wire."""
    tlvs: dict[str, object] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError(f"truncated TLV header at octet {pos}")
        tag, length = struct.unpack_from(">HH", data, pos)
        raw = data[pos + 4:pos + 4 + length]
        if len(raw) != length:
            raise ValueError(f"TLV 0x{tag:04X} claims {length} octets, {len(raw)} left")
        pos += 4 + length
        name = TLV_NAMES.get(tag)
        tlvs[name or f"0x{tag:04x}"] = _tlv_value(name, raw)
    return tlvs


def _tlv_value(name: str | None, raw: bytes) -> object:
    kind = TLV_TYPES.get(name, (ostr, None))[0] if name else ostr
    if kind is int:
        if not raw:
            raise ValueError(f"{name}: empty integer TLV")
        return int.from_bytes(raw, "big")
    if kind is str:
        return raw.rstrip(b"\0").decode("latin-1")
    if kind is flag:
        return True
    return raw


# --- framing ----------------------------------------------------------------------------------

class Framer:
    """Cuts a byte stream into PDUs using the 4-octet command_length."""

    def __init__(self, max_length: int = MAX_LENGTH):
        self.max_length = max_length
        self.broken = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Pdu | BadPdu]:
        """Everything complete so far; once framing is lost, the rest of the stream is ignored."""
        if self.broken:
            return []
        self._buffer += data
        out: list[Pdu | BadPdu] = []
        while len(self._buffer) >= 4 and not self.broken:
            length = int.from_bytes(self._buffer[:4], "big")
            if not HEADER_LENGTH <= length <= self.max_length:
                out.append(self._lost(length))
            elif len(self._buffer) < length:
                break
            else:
                out.append(decode(bytes(self._buffer[:length])))
                del self._buffer[:length]
        return out

    def _lost(self, length: int) -> BadPdu:
        self.broken = True
        sequence = int.from_bytes(self._buffer[12:16], "big") if len(self._buffer) >= 16 else 0
        self._buffer.clear()
        return BadPdu(f"command_length {length} outside {HEADER_LENGTH}..{self.max_length}",
                      ESME_RINVCMDLEN, sequence, fatal=True)
