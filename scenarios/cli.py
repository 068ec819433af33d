"""`validate` and `test` for scenario files, as plain functions the `didchat scenario` command
calls (and `python -m scenarios`). They print to `out` and return the process exit code:
0 all good, 1 a test failed or a file is invalid, 2 bad usage."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from scenarios.program import load_scenario
from scenarios.source import SourceError
from scenarios.testing import run_test_file

USAGE = "usage: python -m scenarios {validate|test} FILE..."


def is_test_file(path: str) -> bool:
    return path.endswith((".test.yaml", ".test.yml"))


def validate(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Load each scenario (test files: load their scenario and check their shape)."""
    bad = 0
    for path in paths:
        problems = _problems(path)
        bad += bool(problems)
        out.write(f"{path}: ok\n" if not problems else problems + "\n")
    return 1 if bad else 0


def _problems(path: str) -> str:
    if is_test_file(path):
        results = run_test_file(path)
        loading = [r for r in results if r.name.endswith("(loading)")]
        return loading[0].message if loading else ""
    try:
        load_scenario(path)
    except SourceError as err:
        return str(err)
    return ""


def test(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Run test files (a scenario FILE.yaml runs FILE.test.yaml next to it); PASS/FAIL per case."""
    passed = failed = 0
    seen: set[str] = set()
    for path in paths:
        if Path(path).is_dir():  # e.g. a shell glob over examples/ meets a folder
            out.write(f"{path}: a folder, skipped\n")
            continue
        target = path if is_test_file(path) else str(Path(path).with_suffix("")) + ".test.yaml"
        if target in seen:  # FILE.yaml and FILE.test.yaml both given: run the tests once
            continue
        seen.add(target)
        if not Path(target).is_file():
            out.write(f"{path}: no test file {target}\n")
            failed += 1
            continue
        out.write(f"{target}\n")
        for result in run_test_file(target):
            out.write(f"  {result}\n".replace("\n    ", "\n      "))
            passed, failed = passed + result.passed, failed + (not result.passed)
    out.write(f"{passed} passed, {failed} failed\n")
    return 1 if failed else 0


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("validate", "test"):
        print(USAGE, file=sys.stderr)
        return 2
    return (validate if argv[0] == "validate" else test)(argv[1:])


__all__ = ["main", "test", "validate"]
