"""Which scenario runs for which access number, and reloading scenario files when they change.

Rules: a number names a system scenario ("default") or a file NAME.yaml in the scenarios
directory, with its own params. A file that breaks on reload is not used: the last good version
keeps running, and the error goes to the log and to every admin's screen.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from chat.config import Config
from scenarios import Engine, Scenario, SourceError, load_scenario, system_scenario

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
        self.optout = self._bind(system_scenario("optout"), config.scenarios.optout)
        for num in config.access_numbers:
            if num.sms:
                self._by_number[num.number] = self._load(num.scenario, num.scenario_params)

    def for_number(self, number: str) -> Bound | None:
        return self._by_number.get(number)

    def path_of(self, name: str) -> Path | None:
        if name in SYSTEM:
            return None
        path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
        return path if path.is_absolute() else Path(self.config.scenarios.directory) / path

    def _load(self, name: str, params: dict) -> Bound:
        path = self.path_of(name)
        if path is None:
            return self._bind(system_scenario(name), params)
        self._mtimes[path] = _mtime(path)
        return self._bind(load_scenario(path), params)

    def _bind(self, scenario: Scenario, params: dict) -> Bound:
        scenario = scenario.with_params(params) if params else scenario
        return Bound(scenario, Engine(scenario))

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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0
