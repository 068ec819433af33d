"""Which scenario runs for which access number, and reloading scenario files when they change.

Rules: a number names a system scenario ("default") or a file NAME.yaml in the scenarios
directory, with its own params. A file that breaks on reload is not used: the last good version
keeps running, and the error goes to the log and to every admin's screen. `problems` loads
exactly what start-up loads, so `didchat config check` passing means `didchat run` can start.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from chat.config import AccessNumberConfig, Config
from scenarios import Document, Engine, Problem, Scenario, SourceError, load_scenario, system_scenario

log = structlog.get_logger()
SYSTEM = ("default", "optout")


@dataclass(frozen=True)
class Bound:
    scenario: Scenario
    engine: Engine


class ScenarioFiles:
    def __init__(self, config: Config, report: Callable[[str], Awaitable[None]]):
        self.config = config
        self.report = report
        self._by_number: dict[str, Bound] = {}
        self._mtimes: dict[Path, float] = {}
        self.optout = bind(system_scenario("optout"), config.scenarios.optout)
        for num in config.access_numbers:
            if num.sms:
                self._by_number[num.number] = self._load(num.scenario, num.scenario_params)

    def configure(self, config: Config) -> None:
        """Bind the numbers of a new running configuration (chat.workers.running); a number whose scenario
        and params did not change keeps its binding, and a file that no longer loads keeps the last good one."""
        before = {n.number: (n.scenario, n.scenario_params) for n in self.config.access_numbers if n.sms}
        fresh: dict[str, Bound] = {}
        for num in config.access_numbers:
            if not num.sms:
                continue
            if before.get(num.number) == (num.scenario, num.scenario_params) and num.number in self._by_number:
                fresh[num.number] = self._by_number[num.number]
                continue
            try:
                self.config = config  # _load reads the scenarios directory from it
                fresh[num.number] = self._load(num.scenario, num.scenario_params)
            except (SourceError, ValueError) as err:  # checked when the change was made: a file broken since
                log.error("scenario.bind_failed", number=num.number, scenario=num.scenario, error=str(err))
                if num.number in self._by_number:
                    fresh[num.number] = self._by_number[num.number]
        self.config, self._by_number = config, fresh

    def for_number(self, number: str) -> Bound | None:
        return self._by_number.get(number)

    def path_of(self, name: str) -> Path | None:
        return path_of(self.config, name)

    def _load(self, name: str, params: dict) -> Bound:
        path = self.path_of(name)
        if path is not None:
            self._mtimes[path] = _mtime(path)
        return bind(scenario_named(self.config, name), params)

    async def watch(self) -> None:
        """Reload scenario files whose modification time changed."""
        while True:
            await asyncio.sleep(self.config.scenarios.reload_seconds)
            for path, seen in list(self._mtimes.items()):
                if _mtime(path) != seen:
                    await self._reload(path)

    async def _reload(self, path: Path) -> None:
        self._mtimes[path] = _mtime(path)
        numbers = [n for n in self.config.access_numbers if n.sms and self.path_of(n.scenario) == path]
        try:
            fresh = {n.number: self._load(n.scenario, n.scenario_params) for n in numbers}
        except (SourceError, ValueError) as err:
            log.error("scenario.reload_failed", path=str(path), error=str(err))
            await self.report(f"Scenario {path} was not reloaded; the last good version keeps running.\n{err}")
            return
        self._by_number.update(fresh)
        log.info("scenario.reloaded", path=str(path), numbers=len(fresh))


def path_of(config: Config, name: str) -> Path | None:
    """The file a scenario name refers to, or None for a system scenario."""
    if name in SYSTEM:
        return None
    path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_absolute() else Path(config.scenarios.directory) / path


def scenario_named(config: Config, name: str) -> Scenario:
    """A system scenario or a scenario file; SourceError for a bad file, ValueError for an unknown name."""
    path = path_of(config, name)
    return system_scenario(name) if path is None else load_scenario(path)


def bind(scenario: Scenario, params: dict) -> Bound:
    """`scenario` with a number's params (templates compiled), ready to run; ValueError for bad params."""
    scenario = scenario.with_params(params) if params else scenario
    return Bound(scenario, Engine(scenario))


def problems(config: Config, doc: Document) -> list[Problem]:
    """What start-up would meet loading every number's scenario and params, placed on the config's lines."""
    found = [p for i, num in enumerate(config.access_numbers) if num.sms for p in _number_problems(config, doc, i, num)]
    try:
        bind(system_scenario("optout"), config.scenarios.optout)
    except ValueError as err:
        found.append(doc.problem(("scenarios", "optout"), str(err)))
    return list(dict.fromkeys(found))  # numbers sharing one broken file report it once


def _number_problems(config: Config, doc: Document, i: int, num: AccessNumberConfig) -> Iterator[Problem]:
    try:
        scenario = scenario_named(config, num.scenario)
    except SourceError as err:  # the file's own file:line, or (unreadable) the line that names it
        yield from (p if p.line else doc.problem(("access_numbers", i, "scenario"), p.message) for p in err.problems)
        return
    except ValueError as err:
        yield doc.problem(("access_numbers", i, "scenario"), str(err))
        return
    try:
        bind(scenario, num.scenario_params)
    except ValueError as err:
        yield doc.problem(("access_numbers", i, "scenario_params"), str(err))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0
