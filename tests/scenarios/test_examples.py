"""Every example's test file passes; the broken example reports file:line; the commands work."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from scenarios import cli
from scenarios.testing import run_test_file

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "examples"
TEST_FILES = sorted(EXAMPLES.glob("*.test.yaml"))


def test_there_are_examples():
    names = {p.name for p in TEST_FILES}
    assert {"business_hours.test.yaml", "crm.test.yaml", "menu.test.yaml", "default.test.yaml"} <= names


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_example_passes(path):
    results = run_test_file(path)
    assert results
    failed = [str(r) for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_broken_example_reports_file_and_line():
    [result] = run_test_file(EXAMPLES / "broken" / "broken.test.yaml")
    assert not result.passed
    assert "broken.yaml:6: on.message_received[1].timeout: required for a wait" in result.message


def test_a_failing_case_names_the_test_line_and_shows_the_difference(tmp_path):
    (tmp_path / "s.yaml").write_text("on:\n  conversation_started: [{reply: Hello}, {route: owner}]\n")
    (tmp_path / "s.test.yaml").write_text(
        "scenario: s.yaml\ncases:\n  - name: wrong\n    steps:\n      - customer: Hi\n"
        "      - expect_reply: Hi there\n")
    [result] = run_test_file(tmp_path / "s.test.yaml")
    assert not result.passed and result.line == 6
    assert result.message == (f"{tmp_path / 's.test.yaml'}:6: expect_reply:   expected: 'Hi there'\n"
                              "  got:      'Hello'\n  not yet checked: route owner")


def test_a_bad_test_file_is_reported(tmp_path):
    (tmp_path / "s.test.yaml").write_text("scenario: s.yaml\ncases:\n  - name: x\n    steps:\n      - custmer: Hi\n")
    [result] = run_test_file(tmp_path / "s.test.yaml")
    assert not result.passed and "s.test.yaml:5: cases[0].steps[0].custmer: unknown key" in result.message


def test_commands():
    out = io.StringIO()
    assert cli.validate([str(EXAMPLES / "menu.yaml"), str(EXAMPLES / "crm.test.yaml")], out) == 0
    assert cli.validate([str(EXAMPLES / "broken" / "broken.yaml")], out) == 1
    out = io.StringIO()
    assert cli.test([str(EXAMPLES / "menu.yaml")], out) == 0
    assert "PASS picks prices by number" in out.getvalue()
    assert cli.test([str(EXAMPLES / "broken" / "broken.test.yaml")], io.StringIO()) == 1
    assert cli.main(["bogus"]) == 2
