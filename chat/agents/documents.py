"""The running document's collections: where users, teams, access numbers and callback numbers live in
it, and how one item is found, put, removed and placed (what the admin API edits: chat.agents.admin).

Rules: a list keeps its order (a new item goes last); a mapping (teams, callback numbers) is keyed by
name; the short forms a file may use (`support: [alice, bob]`, `main: "+1…"`) are read spelled out.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Collection:
    """Where a resource's items live in the running document, and how one is told apart."""

    name: str  # in paths and messages
    key: str  # the field that names an item
    path: tuple[str, ...]  # where in the document: a list of items, or a mapping name -> item
    keyed: bool  # a mapping (teams, callback numbers) rather than a list
    short: Callable[[Any], dict] = lambda v: v  # the short form a file may use, spelled out

    def items(self, doc: dict) -> list[dict]:
        where = _get(doc, self.path)
        if self.keyed:
            return [{self.key: k} | self.short(v) for k, v in (where or {}).items()]
        return list(where or [])

    def find(self, doc: dict, key: str) -> dict | None:
        return next((item for item in self.items(doc) if item.get(self.key) == key), None)

    def put(self, doc: dict, item: dict) -> None:
        """Add or replace the item (a list keeps its order: a new item goes last)."""
        key = item[self.key]
        if self.keyed:
            _make(doc, self.path)[key] = {k: v for k, v in item.items() if k != self.key}
            return
        items = _make(doc, self.path, list)
        for i, old in enumerate(items):
            if old.get(self.key) == key:
                items[i] = item
                return
        items.append(item)

    def remove(self, doc: dict, key: str) -> None:
        where = _get(doc, self.path)
        if self.keyed:
            where.pop(key, None)
        else:
            where[:] = [i for i in where if i.get(self.key) != key]

    def location(self, doc: dict, key: str) -> tuple:
        """The item's place in the document, as problems name it."""
        if self.keyed:
            return (*self.path, key)
        index = next(i for i, item in enumerate(self.items(doc)) if item.get(self.key) == key)
        return (*self.path, index)


def _get(doc: dict, path: tuple[str, ...]) -> Any:
    where: Any = doc
    for part in path:
        where = (where or {}).get(part)
    return where


def _make(doc: dict, path: tuple[str, ...], leaf: type = dict) -> Any:
    for part in path[:-1]:
        doc = doc.setdefault(part, {})
    return doc.setdefault(path[-1], leaf())


USERS = Collection("user", "name", ("users",), False)
TEAMS = Collection("team", "name", ("teams",), True,
                   lambda v: {"members": list(v)} if isinstance(v, list) else dict(v))
NUMBERS = Collection("access number", "number", ("access_numbers",), False)
CONNECTORS = Collection("connector", "name", ("connectors",), False)
CALLBACKS = Collection("callback number", "name", ("callback_numbers", "named"), True,
                       lambda v: {"number": v} if isinstance(v, str) else dict(v))


def set_teams(doc: dict, user: str, teams: list[str]) -> None:
    """Make `user` a member of exactly `teams` (a team not yet configured is created, with defaults)."""
    for team in TEAMS.items(doc):
        members = [m for m in team.get("members", []) if m != user]
        if team["name"] in teams:
            members.append(user)
        TEAMS.put(doc, {**team, "members": members})
    for name in teams:
        if TEAMS.find(doc, name) is None:
            TEAMS.put(doc, {"name": name, "members": [user]})
