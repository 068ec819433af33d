"""The admin API's scenario files: list, read, validate, save, delete; a number takes one with PATCH
/api/v1/numbers/{number} {"scenario": NAME, "scenario_params": {...}}.

Rules:
- A scenario file is NAME.yaml in `scenarios.directory`, as the configuration names it; with several
  nodes that folder is shared (README, "Running several nodes"), so a file saved here is the file
  every node reloads (chat.workers.scenario_files notices its new modification time).
- A file is checked as `didchat scenario validate` checks it, and with the params of every number
  that uses it; each problem names its line (`line`, and `text` as the field). A file that does not
  pass is not saved, and the running version stays.
- Saved whole, atomically (a temporary file renamed over it): a node never reads half a file.
- A file a number uses is not deleted (409, naming the numbers).
"""
from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from chat.agents.api import READ, WRITE, ApiError, Caller, Operation, body_of, field_error, page, validated
from chat.domain.audit import record_unit
from chat.store.context import COMMIT
from chat.workers.running import DIRECTORY
from chat.workers.scenario_files import SYSTEM, bind, path_of
from scenarios import Problem, SourceError, parse_scenario

BASE = "/api/v1/scenarios"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_TEXT = 256 * 1024


class ScenarioProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: int
    field: str
    detail: str


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    numbers: list[str] = Field(description="the access numbers that run it")
    problems: list[ScenarioProblem] = Field(description="what is wrong with it as it is on disk (none: it runs)")
    text: str | None = Field(default=None, description="its YAML (in the answer for one file)")
    created: bool | None = Field(default=None, description="in a save's answer: whether the file is new")


class ScenarioText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_TEXT, description="the whole file, YAML (docs/scenarios.md)")


class Checked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ok: bool
    problems: list[ScenarioProblem]


def _folder(request: web.Request) -> Path:
    return Path(request.app[DIRECTORY].config.scenarios.directory)


def _name(request: web.Request) -> str:
    name = request.match_info["key"].removesuffix(".yaml")
    if not NAME.match(name) or name in SYSTEM:
        raise ApiError(404, "Not Found", f"no scenario file {name[:64]!r} (names are lower case letters, digits, _ and -)")
    return name


def _users(request: web.Request, name: str) -> list[tuple[str, dict]]:
    """The numbers whose scenario is this file, with their params."""
    config = request.app[DIRECTORY].config
    wanted = path_of(config, name)
    return [(n.number, n.scenario_params) for n in config.access_numbers if n.sms and path_of(config, n.scenario) == wanted]


def _check(text: str, name: str, users: list[tuple[str, dict]]) -> list[dict]:
    """The problems of `text` as scenario `name` would meet them, with each number's params."""
    where = f"{name}.yaml"
    try:
        scenario = parse_scenario(text, where)
    except SourceError as err:
        return [_shown(p) for p in err.problems]
    found = []
    for number, params in users:
        try:
            bind(scenario, params)
        except ValueError as err:
            found.append({"line": 0, "field": f"scenario_params of {number}", "detail": str(err)})
    return found


def _shown(p: Problem) -> dict:
    return {"line": p.line, "field": p.field, "detail": p.message}


def _file(request: web.Request, name: str, with_text: bool = False) -> dict:
    path = _folder(request) / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ApiError(404, "Not Found", f"no scenario file {name!r} ({type(err).__name__})") from None
    users = _users(request, name)
    return {"name": name, "numbers": [n for n, _ in users], "problems": _check(text, name, users),
            **({"text": text} if with_text else {})}


async def list_scenarios(request: web.Request, who: Caller) -> web.Response:
    folder = _folder(request)
    names = sorted(p.stem for p in folder.glob("*.yaml") if NAME.match(p.stem) and p.stem not in SYSTEM
                   and not p.name.endswith(".test.yaml")) if folder.is_dir() else []
    return page(request, [_listed(request, name) for name in names])


def _listed(request: web.Request, name: str) -> dict:
    try:
        return _file(request, name)
    except ApiError as err:  # unreadable (removed meanwhile, or not UTF-8): listed with why
        return {"name": name, "numbers": [n for n, _ in _users(request, name)],
                "problems": [{"line": 0, "field": "", "detail": err.detail}]}


async def get_scenario(request: web.Request, who: Caller) -> web.Response:
    return web.json_response(_file(request, _name(request), with_text=True))


async def validate_scenario(request: web.Request, who: Caller) -> web.Response:
    body = validated(ScenarioText, await body_of(request))
    name = request.query.get("name", "scenario")
    users = _users(request, name) if NAME.match(name) else []
    found = _check(body["text"], name if NAME.match(name) else "scenario", users)
    return web.json_response({"ok": not found, "problems": found})


async def save_scenario(request: web.Request, who: Caller) -> web.Response:
    name = _name(request)
    body = validated(ScenarioText, await body_of(request))
    found = _check(body["text"], name, _users(request, name))
    if found:
        raise ApiError(422, "Unprocessable Content", f"{name}.yaml was not saved: " + "; ".join(
            f"line {p['line']}: {p['field']}: {p['detail']}" if p["field"] else f"line {p['line']}: {p['detail']}"
            for p in found[:5]), [field_error(["text"], p["detail"]) | {"line": p["line"]} for p in found])
    folder = _folder(request)
    path = folder / f"{name}.yaml"
    existed = path.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.yaml.{os.getpid()}.tmp"
        temporary.write_text(body["text"], encoding="utf-8")
        os.replace(temporary, path)
    except OSError as err:
        raise ApiError(409, "Conflict", f"{path} cannot be written here: {err.strerror or err}") from None
    await request.app[COMMIT].run(_audit(who, "scenario.saved", name))
    return web.json_response(_file(request, name) | {"created": not existed})


async def delete_scenario(request: web.Request, who: Caller) -> web.Response:
    name = _name(request)
    users = _users(request, name)
    if users:
        raise ApiError(409, "Conflict", f"{name}.yaml runs for {', '.join(n for n, _ in users)}: give them another "
                                        "scenario first")
    path = _folder(request) / f"{name}.yaml"
    try:
        path.unlink()
    except FileNotFoundError:
        raise ApiError(404, "Not Found", f"no scenario file {name!r}") from None
    except OSError as err:
        raise ApiError(409, "Conflict", f"{path} cannot be deleted here: {err.strerror or err}") from None
    await request.app[COMMIT].run(_audit(who, "scenario.deleted", name))
    return web.Response(status=204)


def _audit(who: Caller, action: str, name: str):
    return partial(record_unit, actor=who.name, action=action, target=f"scenario:{name}", address=who.address)


OPERATIONS = [
    Operation("GET", BASE, list_scenarios, READ, "List scenario files, with the numbers that run each and its problems",
              "scenarios", "scenarios", answer=ScenarioFile, listing=True),
    Operation("POST", f"{BASE}/validate", validate_scenario, READ, "Check a scenario file's text without saving it "
              "(?name=NAME: with the params of the numbers that run NAME)", "scenarios", "scenarios", body=ScenarioText,
              answer=Checked, query=(("name", "check it as this file"),)),
    Operation("GET", f"{BASE}/{{key}}", get_scenario, READ, "Get a scenario file, its text and its problems", "scenarios",
              "scenarios", answer=ScenarioFile, errors=(404,)),
    Operation("PUT", f"{BASE}/{{key}}", save_scenario, WRITE, "Save a scenario file (checked first; every node reloads it)",
              "scenarios", "scenarios", body=ScenarioText, answer=ScenarioFile, errors=(404, 409)),
    Operation("DELETE", f"{BASE}/{{key}}", delete_scenario, WRITE, "Delete a scenario file no number runs", "scenarios",
              "scenarios", status=204, errors=(404, 409)),
]
