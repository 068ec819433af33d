"""Reading a webhook's body and fields defensively: raw bytes in, typed values or a named 400 out.

Rules:
- Every problem raises MalformedWebhook (400) naming the field (or "body") and what is wrong,
  whatever the body holds: nesting too deep, integers too long for int(), ids, numbers and texts
  too long for their columns are all 400s, never an exception the server did not expect.
- SignatureError (403) and UnsupportedMediaType (415) are the other refusals a webhook can get.
- Text-like fields that reach the store go through `gateway.text.storable`; `Fields.altered`
  says whether any had to change (or the body was not valid UTF-8), so the caller keeps the
  original payload. Fields that must stay exact (ids, numbers, choices) are refused instead.
- Pure: no I/O.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from gateway.numbers import InvalidNumber
from gateway.text import storable

MAX_TEXT = 10_000
MAX_MEDIA = 10
MAX_ID = 128  # messages.provider_id is VARCHAR(128): a longer id could never be stored
MAX_NUMBER = 64  # longer than any phone number, short code or sender id (and than phonenumbers reads)
MAX_SHORT = 2_048  # a media URL or content type
MAX_DIGITS = 64  # no field we read holds a longer integer; int() refuses 4,300 digits and more
_DECIMAL = re.compile(r"[0-9]{1,18}")  # a count in a form field: ASCII digits, bounded before int()


def form_pairs(text: str, errors: str = "strict") -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(text, keep_blank_values=True, errors=errors)`: the same pairs, in a third of its
    time (a webhook's fields are mostly plain text: only a name or value holding "+" or "%" is decoded).
    errors="strict" raises UnicodeDecodeError on percent-encoded bytes that are not UTF-8, as parse_qsl does."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "+" in name or "%" in name:
            name = unquote(name.replace("+", " "), errors=errors)
        if "+" in value or "%" in value:
            value = unquote(value.replace("+", " "), errors=errors)
        pairs.append((name, value))
    return pairs


class WebhookError(Exception):
    """A webhook we refuse; `status` is the HTTP status to answer, `field` the culprit if any."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SignatureError(WebhookError):
    """The request is not signed by the provider with our secret."""

    status = 403


class MalformedWebhook(WebhookError):
    """The request is signed but its content is not what the provider documents."""

    status = 400


class UnsupportedMediaType(WebhookError):
    """The request is signed but its body is not of the content type the webhook takes."""

    status = 415




def require_json(content_type: str | None) -> None:
    """Refuse a body that does not say it is JSON (RFC 8259 JSON is UTF-8, parameters aside)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        got = shown(content_type) if content_type else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {got}", "Content-Type")


def decode_body(body: bytes) -> tuple[str, bool]:
    """The body as UTF-8 text, bytes that are not UTF-8 read as U+FFFD; whether any were."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace"), True


@dataclass(frozen=True)
class _LongInteger:
    """A JSON integer with more digits than any field may hold, kept unconverted."""

    digits: int

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _json_integer(text: str) -> int | _LongInteger:
    """Convert a JSON integer, unless it is too long to be any field's value (or for int())."""
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_DIGITS else _LongInteger(digits)


def json_object(text: str) -> dict[str, Any]:
    """Decode a body that must be one JSON object, whatever it holds instead."""
    try:
        data = json.loads(text, parse_int=_json_integer)
    except RecursionError:
        raise MalformedWebhook("body is nested too deeply to be a webhook", "body") from None
    except ValueError as err:  # JSONDecodeError, and anything a number's conversion raises
        raise MalformedWebhook(f"body is not valid JSON: {err}", "body") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object", "body")
    return data


def shown(value: Any, limit: int = 40) -> str:
    """A value for an error message: its repr (escapes NULs and surrogates), cut short."""
    if isinstance(value, list | dict):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."



class Fields:
    """Typed reads of a webhook's fields, each failure naming the field.

    `altered` says whether anything read so far had to change to be storable (or was decoded
    with replacements): then the caller keeps the original payload.
    """

    def __init__(self, data: Mapping[str, Any], *, altered: bool = False, prefix: str = ""):
        self.data = data
        self.altered = altered
        self.prefix = prefix  # where `data` sits in the body ("data.payload."), for the names in errors

    def at(self, name: str) -> str:
        """The field's name as an error names it: its path from the top of the body."""
        return self.prefix + name

    def nested(self, name: str, *, required: bool = True) -> Fields:
        """The fields of a JSON object inside this one (empty when optional and absent); `altered` is shared
        through `parent`, so what the nested reads change is known here too."""
        value = self.data.get(name)
        if value is None and not required:
            value = {}
        if not isinstance(value, Mapping):
            raise MalformedWebhook(f"field {self.at(name)!r} must be an object", self.at(name))
        return _Nested(value, self, f"{self.at(name)}.")

    def objects(self, name: str, limit: int, *, required: bool = False) -> list[Fields]:
        """The JSON objects of an array field, at most `limit` (absent and not required: none)."""
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise MalformedWebhook(f"field {self.at(name)!r} must be an array of objects", self.at(name))
        if len(value) > limit:
            raise MalformedWebhook(f"field {self.at(name)!r} has more than {limit} items", self.at(name))
        return [_Nested(item, self, f"{self.at(name)}[{n}].") for n, item in enumerate(value)]

    def required(self, name: str) -> Any:
        """Return a field that must be present and not null."""
        value = self.data.get(name)
        if value is None:
            raise MalformedWebhook(f"missing field {self.at(name)!r}", self.at(name))
        return value

    def first(self, *names: str) -> str:
        """Return the first non-empty of several alternative id fields."""
        name = next((n for n in names if self.data.get(n)), None)
        if name is None:
            raise MalformedWebhook(f"missing field {self.at(names[0])!r}", self.at(names[0]))
        return self.identifier(name)

    def repaired(self, value: str) -> str:
        """Return `value` as the store can hold it (gateway.text.storable), noting when it had to change."""
        value, changed = storable(value)
        self.altered = self.altered or changed
        return value

    def string(self, name: str) -> str:
        """Return a field that must be a string."""
        value = self.required(name)
        if not isinstance(value, str):
            raise MalformedWebhook(f"field {self.at(name)!r} must be a string", self.at(name))
        return value

    def identifier(self, name: str) -> str:
        """Return a non-empty id, given as a string or an integer, exactly as the provider gave it."""
        value = self.required(name)
        if isinstance(value, _LongInteger):
            raise MalformedWebhook(f"field {self.at(name)!r} is {value!r}; an id has at most {MAX_ID} characters", self.at(name))
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value:
            raise MalformedWebhook(f"field {self.at(name)!r} must be a non-empty string", self.at(name))
        if len(value) > MAX_ID:
            raise MalformedWebhook(f"field {self.at(name)!r} is longer than {MAX_ID} characters", self.at(name))
        if storable(value)[1]:  # an id must match the provider's exactly: it cannot be repaired
            raise MalformedWebhook(f"field {self.at(name)!r} holds U+0000 or a lone surrogate, which no id may", self.at(name))
        return value

    def number(self, name: str, normalize: Callable[[str], str]) -> str:
        """Return a phone number field normalised, or name the field and why it is refused."""
        value = self.string(name)
        if len(value) > MAX_NUMBER:
            raise MalformedWebhook(f"field {self.at(name)!r} is longer than {MAX_NUMBER} characters", self.at(name))
        try:
            return normalize(value)
        except InvalidNumber as err:
            raise MalformedWebhook(f"field {self.at(name)!r}: {err}", self.at(name)) from None

    def text(self, name: str, *, allow_empty: bool = False, required: bool = True) -> str:
        """Return a message text: present, non-empty unless allowed, at most MAX_TEXT characters."""
        if not required and self.data.get(name) is None:
            return ""
        value = self.string(name)
        if not value and not allow_empty:
            raise MalformedWebhook(f"field {self.at(name)!r} is empty and the message has no media", self.at(name))
        if len(value) > MAX_TEXT:
            raise MalformedWebhook(f"field {self.at(name)!r} is longer than {MAX_TEXT} characters", self.at(name))
        return self.repaired(value)

    def short_text(self, name: str) -> str:
        """Return a required short text (a media URL or content type), made storable."""
        value = self.string(name)
        if len(value) > MAX_SHORT:
            raise MalformedWebhook(f"field {self.at(name)!r} is longer than {MAX_SHORT} characters", self.at(name))
        return self.repaired(value)

    def optional_text(self, name: str) -> str | None:
        """Return an optional short text (an error message or code), made storable, or None."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedWebhook(f"field {self.at(name)!r} must be a string", self.at(name))
        return storable(str(value)[:MAX_TEXT])[0]

    def choice(self, name: str, table: Mapping[str, str]) -> str:
        """Return the value a field's value maps to in `table`."""
        value = self.string(name)
        if value not in table:
            allowed = ", ".join(sorted(table))
            raise MalformedWebhook(f"field {self.at(name)!r}: {shown(value)} is not one of {allowed}", self.at(name))
        return table[value]

    def integer(self, name: str, low: int, high: int, default: int = 0) -> int:
        """Return an optional integer field (int or decimal string) within [low, high]."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        # Digits are counted before int(): int() of 4,300 digits or more raises ValueError.
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
            raise MalformedWebhook(f"field {self.at(name)!r} must be an integer from {low} to {high}", self.at(name))
        return int(text)

    def timestamp(self, name: str) -> datetime | None:
        """Return an optional time given as ISO 8601 or unix seconds, in UTC when unzoned."""
        value = self.data.get(name)
        if value is None:
            return None
        try:
            return _timestamp(value)
        except (TypeError, ValueError, OverflowError, OSError):
            problem = "must be ISO 8601 or unix seconds"
            raise MalformedWebhook(f"field {self.at(name)!r}: {shown(value)} {problem}", self.at(name)) from None



class _Nested(Fields):
    """The fields of an object inside a body: reads that change a text mark the whole body altered."""

    def __init__(self, data: Mapping[str, Any], parent: Fields, prefix: str):
        super().__init__(data, prefix=prefix)
        self._parent = parent

    @property
    def altered(self) -> bool:
        return self._parent.altered

    @altered.setter
    def altered(self, value: bool) -> None:
        if hasattr(self, "_parent"):
            self._parent.altered = value


def _timestamp(value: Any) -> datetime:
    """Read ISO 8601 text or unix seconds; raise ValueError/TypeError otherwise."""
    if isinstance(value, bool | _LongInteger):
        raise TypeError(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

