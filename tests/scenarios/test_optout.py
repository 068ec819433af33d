"""Opt-out keywords: the whole message, trimmed, any case; never a substring."""
from __future__ import annotations

import pytest

from scenarios import OptOut, SendReply, Trigger, classify, system_scenario
from tests.scenarios.conftest import Runner


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop\n", "STOPALL", "UNSUBSCRIBE", "cancel", "END", "quit",
                                  "REVOKE", "OptOut"])
def test_opt_out_words(text):
    assert classify(text) == "opt_out"


@pytest.mark.parametrize(("text", "kind"), [("START", "opt_in"), ("unstop", "opt_in"), ("Yes", "opt_in"),
                                            ("HELP", "help"), (" info ", "help")])
def test_other_words(text, kind):
    assert classify(text) == kind


@pytest.mark.parametrize("text", ["please stop by tomorrow", "STOP!", "stop it", "opt out", "", "stopp",
                                  "unsubscribe me", "helpful", "x" * 1000])
def test_not_keywords(text):
    assert classify(text) is None


def test_optout_scenario_effects():
    sc = system_scenario("optout")
    run = Runner(sc)
    assert run(Trigger("opt_out")).effects == (OptOut(True), SendReply(sc.params["stop_reply"]))
    assert run(Trigger("opt_in")).effects == (OptOut(False), SendReply(sc.params["start_reply"]))
    assert run(Trigger("help")).effects == (SendReply(sc.params["help_reply"]),)
    custom = Runner(sc.with_params({"help_reply": "Call 555-0100"}))
    assert custom(Trigger("help")).effects == (SendReply("Call 555-0100"),)
