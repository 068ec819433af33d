"""YAML documents validated by pydantic models, with errors that name file, line and field.

Rules: a loader never raises anything but `SourceError`, whatever the bytes; each message reads
`FILE:LINE: FIELD: PROBLEM`. `${NAME}` in a string is replaced by the environment variable
NAME (`${NAME:-default}` gives a default), so secrets need not live in the file.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

M = TypeVar("M", bound=BaseModel)
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SourceError(Exception):
    """A file that cannot be used, with every problem found in it."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Document:
    """A parsed YAML file that remembers where each value came from."""

    path: str
    data: Any

    def problem(self, loc: Loc, message: str) -> Problem:
        """A problem at `loc` (a pydantic-style location), placed on its line."""
        return Problem(self.path, line_of(self.data, loc), dotted(loc), message)

    def validate(self, model: type[M]) -> M:
        """The document as `model`, or SourceError naming each bad field's line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as err:
            raise SourceError([self.problem(error_loc(self.data, e), _message(e)) for e in err.errors()]) from None


def error_loc(data: Any, error: Any) -> Loc:
    """Where in `data` a pydantic error is: its location without union tags (`untagged`), and a tag that is
    wrong or missing placed on the field that carries it (`connectors.0.type`)."""
    loc = untagged(data, error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, str(error.get("ctx", {}).get("discriminator", "type")).strip("'"))
    return loc


def untagged(data: Any, loc: Loc) -> Loc:
    """`loc` without the tags pydantic puts in it for a tagged union (`connectors.0.smpp.port` is the
    document's `connectors.0.port`: `smpp` is the value of the item's `type`, not one of its keys)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in node.values():
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(out)


def _message(error: dict) -> str:
    return error["msg"].removeprefix("Value error, ")


def parse(text: str, path: str) -> Document:
    """Parse YAML text; syntax errors and missing variables become SourceError."""
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise SourceError([Problem(path, line, "", f"not valid YAML: {err.problem or err}")]) from None
    except (YAMLError, ValueError, TypeError) as err:
        raise SourceError([Problem(path, 1, "", f"not valid YAML: {err}")]) from None
    problems: list[Problem] = []
    data = _substitute(data, path, problems, 1)
    if problems:
        raise SourceError(problems)
    return Document(path, data)


def load(path: str | os.PathLike[str]) -> Document:
    """Read and parse a YAML file."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError([Problem(name, 0, "", f"cannot read: {err}")]) from None
    return parse(text, name)


def line_of(node: Any, loc: Loc) -> int:
    """The 1-based line of the deepest part of `loc` present in the document."""
    line = _own_line(node)
    for key in loc:
        child_line = _child_line(node, key)
        if child_line is None:
            break
        line, node = child_line, node[key]
    return line


def dotted(loc: Loc) -> str:
    """`('users', 0, 'name')` as `users[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _own_line(node: Any) -> int:
    lc = getattr(node, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else 1


def _child_line(node: Any, key: str | int) -> int | None:
    if isinstance(node, CommentedMap) and key in node:
        return node.lc.key(key)[0] + 1
    if isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
        return node.lc.item(key)[0] + 1
    return None


def _substitute(node: Any, path: str, problems: list[Problem], line: int) -> Any:
    if isinstance(node, CommentedMap):
        for key in list(node):
            node[key] = _substitute(node[key], path, problems, node.lc.key(key)[0] + 1)
    elif isinstance(node, CommentedSeq):
        for i in range(len(node)):
            node[i] = _substitute(node[i], path, problems, node.lc.item(i)[0] + 1)
    elif isinstance(node, str) and "${" in node:
        return ENV_REF.sub(lambda m: _env(m, path, problems, line), node)
    return node


def _env(match: re.Match[str], path: str, problems: list[Problem], line: int) -> str:
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name, default)
    if value is None:
        problems.append(Problem(path, line, "", f"environment variable {name} is not set"))
        return ""
    return value


__all__ = ["Document", "Problem", "SourceError", "load", "parse", "line_of", "dotted", "error_loc"]
