"""`didchat scenario validate|test`: what a scenario author runs, with file:line errors and exit codes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "examples"


def didchat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chat", "scenario", *args], capture_output=True, text=True, timeout=120)


def test_the_shipped_examples_pass():
    result = didchat("test", *map(str, sorted(EXAMPLES.iterdir())))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "FAIL " not in result.stdout


def test_a_broken_example_gives_file_and_line():
    broken = EXAMPLES / "broken" / "broken.yaml"
    result = didchat("validate", str(broken))
    assert result.returncode == 2
    assert f"{broken}:6: on.message_received[1].timeout: required for a wait" in result.stdout + result.stderr
    tested = didchat("test", str(EXAMPLES / "broken" / "broken.test.yaml"))
    assert tested.returncode == 1 and "broken.yaml:6" in tested.stdout + tested.stderr
