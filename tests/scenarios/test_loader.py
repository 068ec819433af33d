"""Loading scenario files: errors with file:line: field, unknown names, the schema, fuzzing."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import SourceError, load_scenario, parse_scenario, system_scenario
from scenarios.schema import SCHEMA_PATH, schema_text


def problems(text: str) -> list[str]:
    with pytest.raises(SourceError) as err:
        parse_scenario(text, "support.yaml")
    return [str(p) for p in err.value.problems]


def test_errors_name_file_line_and_field():
    got = problems("""name: support
on:
  message_received:
    - reply: hi
    - replly: hi
    - reply: hi
      tag: x
    - http: https://x
      tmeout: 5s
  message_recieved: []
""")
    assert got == [
        "support.yaml:5: on.message_received[1]: not a step: unknown step 'replly' (did you mean 'reply'?)",
        "support.yaml:6: on.message_received[2]: one step per list item: found reply, tag; put each in its own `- ` item",
        "support.yaml:9: on.message_received[3].tmeout: unknown key for this step (did you mean 'timeout'? "
        "allowed: http, method, headers, body, timeout, save_as, keep, on_error)",
        "support.yaml:10: on.message_recieved: unknown trigger (did you mean 'message_received'? allowed: "
        "conversation_started, message_received, agent_unavailable, no_agent_reply, conversation_closed, "
        "timer, opt_out, opt_in, help)",
    ]


def test_expression_errors_at_load_time():
    got = problems("""on:
  message_received:
    - wait_reply: answer
      timeout: 5m
    - reply: "{{ answr }}"
    - if: 'answer == "yes" &&'
      then: [close]
    - if: 'foo(answer)'
      then: []
    - reply: "{{ unclosed"
    - set_timer: nope
      after: 1h
    - business_hours: {timezone: Mars/Olympus, weekly: {mon: "09:00-17:00"}}
    - regex: "(unclosed"
      then: []
    - set: {message: x}
""")
    assert got[0].startswith("support.yaml:5: on.message_received[1].reply: unknown name 'answr' (did you mean 'answer'?")
    assert got[1].startswith("support.yaml:6: on.message_received[2].if: not a valid expression: ")
    assert got[2] == "support.yaml:8: on.message_received[3].if: unknown function 'foo'"
    assert got[3] == "support.yaml:10: on.message_received[4].reply: '{{' without a matching '}}'"
    assert got[4].startswith("support.yaml:11: on.message_received[5].set_timer: no `timer: nope:`")
    assert got[5].startswith("support.yaml:13: on.message_received[6].business_hours: unknown time zone 'Mars/Olympus'")
    assert got[6].startswith("support.yaml:14: on.message_received[7].regex: not a valid regular expression")
    assert got[7].startswith("support.yaml:16: on.message_received[8].set.message: 'message' is a fact's name")


def test_comprehension_variables_are_not_unknown():
    parse_scenario("on:\n  message_received:\n    - if: 'conversation.tags.exists(t, t == \"vip\")'\n"
                   "      then: []\n", "x.yaml")


def test_yaml_syntax_and_env_errors(monkeypatch):
    assert problems("on: [\n")[0].startswith("support.yaml:2: not valid YAML")
    monkeypatch.delenv("NO_SUCH_VAR_X", raising=False)
    assert problems("on:\n  message_received: [{reply: '${NO_SUCH_VAR_X}'}]\n") == [
        "support.yaml:2: environment variable NO_SUCH_VAR_X is not set"]
    assert problems("- a list") == ["support.yaml:1: a scenario is a mapping with at least `on:` (see docs/scenarios.md)"]
    assert problems("name: x\n") == ["support.yaml:1: on: required"]


def test_load_scenario_missing_file(tmp_path):
    with pytest.raises(SourceError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_system_scenarios_load():
    assert set(system_scenario("default").params) == {"away_reply", "backup_user"}
    assert set(system_scenario("optout").params) == {"stop_reply", "start_reply", "help_reply"}
    with pytest.raises(ValueError):
        system_scenario("../etc/passwd")


def test_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run: python -m scenarios.schema"


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                         st.sampled_from(["5m", "owner", "{{ x }}", "{{ message.text }}", "close", "America/New_York"]))
keys = st.sampled_from(["on", "name", "params", "message_received", "reply", "if", "then", "else", "wait_reply",
                        "timeout", "route", "user", "http", "keep", "business_hours", "weekly", "timezone",
                        "switch", "cases", "timer", "no_agent_reply", "after", "steps", "set", "x"])
documents = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents)
def test_loader_never_crashes_on_structured_yaml(data):
    import json
    _only_source_errors(json.dumps(data))
    _only_source_errors(json.dumps({"on": data}))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_loader_never_crashes_on_text(text):
    _only_source_errors(text)


def test_loader_survives_recursive_aliases():
    _only_source_errors("on: &a\n  message_received: [*a]\n")
    _only_source_errors("on:\n  message_received: &s [{if: x, then: *s}]\n")


def _only_source_errors(text: str) -> None:
    try:
        parse_scenario(text, "fuzz.yaml")
    except SourceError:
        pass
