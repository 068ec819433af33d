"""Connector secrets in the running configuration: sealed in the database, write-only everywhere else.

Rules:
- A connector's secret (a Twilio auth token, a webhook secret, an SMPP password) is stored in the
  running configuration either sealed (`sealed:…`, Fernet keyed from the node's secret_key, which
  every node of a cluster shares) or as `${NAME}`, a reference each node resolves from its own
  environment, so a secret need never reach the database. The plain value lives only in memory.
- `${didchat:stored}` stands for the secret stored already for that field of that connector: the
  admin API answers it in place of every sealed secret and fills it in for a secret an update leaves
  out, and `didchat config export` writes it; so no secret leaves, and applying what was read or
  exported changes nothing.
- A plain value equal to the stored one keeps its sealed form, so a revision changes only when a
  secret does; what shows a document (the API, a diff, the audit log) shows `display`, never a value.
"""
from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import os
import re
import secrets
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from chat.config import Config, Connector

STORED = "${didchat:stored}"
SEALED = "sealed:"
CHANGED = "(new secret)"  # how a diff shows a secret that a change sets
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
Loc = tuple[str | int, ...]


def _secret_fields() -> dict[str, tuple[str, ...]]:
    """Each connector type's secret fields (those declared SecretStr)."""
    union = typing.get_args(Connector)[0]
    return {typing.get_args(cls.model_fields["type"].annotation)[0]:
            tuple(name for name, info in cls.model_fields.items() if info.annotation is SecretStr)
            for cls in typing.get_args(union)}


SECRET_FIELDS = _secret_fields()


def secret_key(configured: str | None, data_dir: str) -> str:
    """The configured secret_key, or one generated once and kept in the data folder (one node alone)."""
    if configured:
        return configured
    path = Path(data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


class Vault:
    """Seals and opens secrets with a key derived from the node's secret_key."""

    def __init__(self, key: str):
        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"didchat connector secrets").derive(key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived[:32]))
        self._mac = derived[32:]

    def seal(self, value: str) -> str:
        return SEALED + self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str:
        """The plain value; ValueError if this key did not seal it."""
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED).encode()).decode()
        except (InvalidToken, ValueError, UnicodeDecodeError):
            raise ValueError("it cannot be unsealed with this node's secret_key (was the key changed?): "
                             "set the secret again") from None

    def digest(self, value: str) -> str:
        """A keyed digest of a secret (what a fingerprint holds of it)."""
        return hmac.new(self._mac, value.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=8)
def _vault(key: str) -> Vault:
    return Vault(key)


def vault_for(node: Config) -> Vault:
    """The vault of `node`'s secret_key (generated into its data folder when none is configured)."""
    return _vault(secret_key(node.secret_key.get_secret_value() if node.secret_key else None, node.data_dir))


def secrets_of(data: Any) -> Iterator[tuple[Loc, str, str, Any]]:
    """(location, connector name, field, value) of each secret in a document's connectors."""
    connectors = data.get("connectors") if isinstance(data, Mapping) else None
    if not isinstance(connectors, list):
        return
    for i, conn in enumerate(connectors):
        if isinstance(conn, Mapping):
            for name in SECRET_FIELDS.get(str(conn.get("type")), ()):
                if name in conn:
                    yield ("connectors", i, name), str(conn.get("name")), name, conn[name]


def _set(data: Any, loc: Loc, value: Any) -> None:
    data[loc[0]][loc[1]][loc[2]] = value


def _stored_by_name(previous: Any) -> dict[tuple[str, str], str]:
    return {(conn, name): value for _, conn, name, value in secrets_of(previous) if isinstance(value, str)}


def with_secrets(config: Config, data: dict) -> dict:
    """`data` (a document of `config`, whose secrets pydantic masks) with `config`'s plain secrets put back."""
    data = copy.deepcopy(data)
    for i, conn in enumerate(config.connectors):
        for name in SECRET_FIELDS[conn.type]:
            data["connectors"][i][name] = getattr(conn, name).get_secret_value()
    return data


def seal(data: Any, previous: Any, vault: Vault) -> Any:
    """`data` as it is stored: each plain secret sealed (keeping the stored sealed form when it equals the stored
    value), `${didchat:stored}` replaced by what is stored for that connector's field (left as it is when nothing is:
    `reveal` names it), references and sealed values as they are."""
    data = copy.deepcopy(data)
    stored = _stored_by_name(previous)
    for loc, conn, name, value in list(secrets_of(data)):
        if not isinstance(value, str) or ENV_REF.match(value) or value.startswith(SEALED):
            continue
        old = stored.get((conn, name))
        if value == STORED:
            if old is not None:
                _set(data, loc, old)
        elif old is not None and old.startswith(SEALED) and _opens_to(vault, old, value):
            _set(data, loc, old)
        else:
            _set(data, loc, vault.seal(value))
    return data


def _opens_to(vault: Vault, sealed: str, value: str) -> bool:
    try:
        return hmac.compare_digest(vault.open(sealed), value)
    except ValueError:
        return False


def reveal(data: Any, vault: Vault, environ: Mapping[str, str] = os.environ) -> tuple[Any, list[tuple[Loc, str]]]:
    """A stored document with each secret in plain (sealed ones opened, references read from `environ`), and the
    problems: (location, message) of each secret that cannot be had on this node."""
    data = copy.deepcopy(data)
    problems: list[tuple[Loc, str]] = []
    for loc, _, _, value in list(secrets_of(data)):
        if not isinstance(value, str):
            continue
        if value == STORED:
            problems.append((loc, "no secret is stored for it yet: give its value (or ${NAME} of an environment variable)"))
        elif value.startswith(SEALED):
            try:
                _set(data, loc, vault.open(value))
            except ValueError as err:
                problems.append((loc, str(err)))
        elif match := ENV_REF.match(value):
            if match.group(1) in environ:
                _set(data, loc, environ[match.group(1)])
            else:
                problems.append((loc, f"environment variable {match.group(1)} is not set on this node"))
    return data, problems


def display(data: Any, previous: Any = None, references: bool = True) -> Any:
    """A stored document as it may be shown: each sealed secret as `${didchat:stored}` (or, where `previous` is given,
    `(new secret)` if it differs from the one stored there); references as they are, unless not `references` (an
    export: a file's `${NAME}` is read when the file is, so what is stored is written `${didchat:stored}`)."""
    data = copy.deepcopy(data)
    before = _stored_by_name(previous) if previous is not None else {}
    for loc, conn, name, value in list(secrets_of(data)):
        if references and isinstance(value, str) and ENV_REF.match(value):
            continue
        changed = previous is not None and before.get((conn, name)) != value
        _set(data, loc, CHANGED if changed else STORED)
    return data


def digests(data: Any, vault: Vault) -> list[tuple[str, str, str]]:
    """(connector, field, keyed digest) of each plain secret of a document: what a file's fingerprint holds of them."""
    return sorted((conn, name, vault.digest(str(value))) for _, conn, name, value in secrets_of(data))
