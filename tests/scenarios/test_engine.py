"""The engine: every trigger and step, waits and timeouts, the queue, the step cap, errors."""
from __future__ import annotations

from datetime import timedelta

import pytest

from scenarios import (
    Call,
    CallResult,
    Close,
    CustomerReply,
    Notify,
    OptOut,
    Route,
    SaveActivity,
    SendReply,
    SetContactFields,
    SetTimer,
    Tag,
    Timeout,
    Trigger,
)
from tests.scenarios.conftest import NOW, Runner, facts


def test_every_trigger_runs_its_steps(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_started: [{reply: started}]
  message_received: [{reply: "got {{ message.text }}"}]
  agent_unavailable: [{reply: away}]
  no_agent_reply: {after: 5m, steps: [{reply: sorry for the wait}]}
  conversation_closed: [{reply: bye}]
  timer: {ping: [{reply: ping}]}
  opt_out: [{opt_out: true}]
  opt_in: [{opt_out: false}]
  help: [{reply: help}]
""")
    assert sc.no_agent_reply_after == timedelta(minutes=5)
    run = Runner(sc)
    expected = [
        (Trigger("conversation_started"), (SendReply("started"),)),
        (Trigger("message_received"), (SendReply("got Hi"),)),
        (Trigger("agent_unavailable"), (SendReply("away"),)),
        (Trigger("no_agent_reply"), (SendReply("sorry for the wait"),)),
        (Trigger("conversation_closed"), (SendReply("bye"),)),
        (Trigger("timer", {"name": "ping"}), (SendReply("ping"),)),
        (Trigger("opt_out"), (OptOut(True),)),
        (Trigger("opt_in"), (OptOut(False),)),
        (Trigger("help"), (SendReply("help"),)),
    ]
    for trigger, effects in expected:
        result = run(trigger)
        assert (result.effects, result.run, result.wake_at) == (effects, None, None)
    assert run(Trigger("timer", {"name": "other"})).effects == ()


def test_simple_steps(compile_yaml):
    sc = compile_yaml("""
params: {team: support}
on:
  message_received:
    - set: {n: "{{ 1 + 2 }}", label: "n={{ n }}", items: ["{{ n }}", x]}
    - reply: "{{ label }} {{ vars.items }}"
    - notify: "only for the agent"
    - tag: "vip"
    - route: owner
    - route: {user: bob}
    - route: {team: "{{ params.team }}"}
    - set_timer: later
      after: 1h
    - close
    - stop
    - reply: never
  timer: {later: []}
""")
    result = Runner(sc)(Trigger("message_received"))
    assert result.effects == (
        SendReply('n=3 [3, "x"]'), Notify("only for the agent"), Tag("vip"), Route("owner", None),
        Route("user", "bob"), Route("team", "support"), SetTimer("later", NOW + timedelta(hours=1)), Close(),
    )


def test_if_switch_keywords_regex(compile_yaml):
    sc = compile_yaml("""
on:
  message_received:
    - if: 'message.text.contains("agent")'
      then: [{tag: wants-agent}]
      else: [{tag: no-agent}]
    - switch: message.text
      cases: {"hello": [{reply: case hello}], "2": [{reply: case 2}]}
      default: [{reply: default}]
    - keywords: [price, "opening hours"]
      then: [{reply: keyword}]
    - regex: '(?P<order>\\d{6})'
      then: [{reply: "order {{ order }}"}]
""")
    run = Runner(sc)
    assert run(Trigger("message_received"), facts("  HELLO ")).effects == (Tag("no-agent"), SendReply("case hello"))
    assert run(Trigger("message_received"), facts("2")).effects == (Tag("no-agent"), SendReply("case 2"))
    got = run(Trigger("message_received"), facts("agent: PRICE of order 123456?")).effects
    assert got == (Tag("wants-agent"), SendReply("default"), SendReply("keyword"), SendReply("order 123456"))
    assert SendReply("keyword") not in run(Trigger("message_received"), facts("priceless")).effects
    assert SendReply("keyword") in run(Trigger("message_received"), facts("your Opening hours?")).effects


def test_wait_reply_answer_and_timeout(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_started:
    - reply: "1 or 2?"
    - wait_reply: choice
      timeout: 10m
      on_timeout: [{reply: too late}]
    - reply: "you said {{ choice }}"
""")
    run = Runner(sc)
    assert run(Trigger("conversation_started")).effects == (SendReply("1 or 2?"),)
    assert run.wake_at == NOW + timedelta(minutes=10)
    # the first message (same id) is not the answer: it waits in the queue
    assert run(Trigger("message_received")).effects == ()
    assert run(Trigger("message_received"), facts("2", message_id=2)).effects == (SendReply("you said 2"),)
    assert run.run is None

    run(Trigger("conversation_started"))
    assert run(CustomerReply("1")).effects == (SendReply("you said 1"),)

    run(Trigger("conversation_started"))
    result = run(Timeout(), now=NOW + timedelta(minutes=10))
    assert result.effects == (SendReply("too late"), SendReply("you said "))
    assert result.run is None and result.wake_at is None


def test_first_message_is_not_the_answer_even_without_ids(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_started:
    - wait_reply: choice
      timeout: 10m
    - reply: "you said {{ choice }}"
  message_received: [{tag: "msg {{ message.text }}"}]
""")
    run = Runner(sc)
    run(Trigger("conversation_started"), facts("Hi", None))
    assert run(Trigger("message_received"), facts("Hi", None)).effects == ()
    result = run(Trigger("message_received"), facts("2", None))
    assert result.effects == (SendReply("you said 2"), Tag("msg Hi"))
    assert result.run is None


def test_wait_reply_without_timeout_is_a_load_error(compile_yaml):
    from scenarios import SourceError
    with pytest.raises(SourceError) as err:
        compile_yaml("on:\n  message_received:\n    - reply: hi\n    - wait_reply: x\n", "w.yaml")
    assert str(err.value).startswith("w.yaml:4: on.message_received[1].timeout: required for a wait")


def test_a_trigger_waits_in_the_queue_until_the_execution_ends(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_started:
    - wait_reply: name
      timeout: 1m
    - reply: "hello {{ name }}"
  agent_unavailable: [{reply: away}]
  conversation_closed: [{reply: closed}]
""")
    run = Runner(sc)
    run(Trigger("conversation_started"))
    assert run(Trigger("agent_unavailable")).effects == ()
    assert run(Trigger("conversation_closed")).effects == ()
    assert [q["trigger"] for q in run.run["queue"]] == ["agent_unavailable", "conversation_closed"]
    result = run(CustomerReply("Bob"))
    assert result.effects == (SendReply("hello Bob"), SendReply("away"), SendReply("closed"))
    assert result.run is None


def test_queued_message_keeps_its_own_text(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_started:
    - http: https://crm.example/x
  message_received: [{reply: "echo {{ message.text }}"}]
""")
    run = Runner(sc)
    call = run(Trigger("conversation_started")).effects[0]
    run(Trigger("message_received"), facts("first", 1))
    run(Trigger("message_received"), facts("second", 2))
    result = run(CallResult(call.call_id, 200, {}), facts("", None))
    assert result.effects == (SendReply("echo first"), SendReply("echo second"))


def test_http_keeps_fields_and_handles_errors(compile_yaml):
    sc = compile_yaml("""
on:
  message_received:
    - http: "https://crm.example/contacts?phone={{ urlEncode(contact.number) }}"
      method: POST
      headers: {X-Key: k}
      body: {phone: "{{ contact.number }}", n: 1}
      timeout: 5s
      save_as: crm
      keep: [name]
      on_error: [{notify: "lookup failed {{ crm.status }}"}]
    - reply: "hi {{ has(contact.fields.name) ? contact.fields.name : 'there' }}"
""")
    run = Runner(sc)
    call = run(Trigger("message_received")).effects[0]
    assert call == Call(call.call_id, "POST", "https://crm.example/contacts?phone=%2B15555550123",
                        {"X-Key": "k"}, {"phone": "+15555550123", "n": 1}, 5.0)
    assert run.wake_at == NOW + timedelta(seconds=15)
    assert run(CallResult("stale", 200, {})).effects == ()  # not this run's call
    ok = run(CallResult(call.call_id, 200, {"name": "Carol", "ssn": "x"}))
    assert ok.effects == (SetContactFields({"name": "Carol"}), SendReply("hi Carol"))

    call = run(Trigger("message_received")).effects[0]
    assert run(Timeout()).effects == (Notify("lookup failed 0"), SendReply("hi there"))


def test_call_ids_and_activity_keys_are_deterministic(compile_yaml):
    sc = compile_yaml("""
on:
  conversation_closed:
    - save_activity: https://crm.example/activities
      outcome: resolved
    - http: https://crm.example/ping
""")
    a, b = Runner(sc)(Trigger("conversation_closed")), Runner(sc)(Trigger("conversation_closed"))
    assert a.effects == b.effects
    activity = a.effects[0]
    assert isinstance(activity, SaveActivity) and activity.key.startswith("activity-")
    assert activity.body["outcome"] == "resolved" and activity.body["phone"] == "+15555550123"
    assert activity.body["transcript"] == []
    later = Runner(sc)(Trigger("conversation_closed"), now=NOW + timedelta(seconds=1))
    assert later.effects[0].key != activity.key


def test_business_hours_step(compile_yaml):
    sc = compile_yaml("""
on:
  message_received:
    - business_hours:
        timezone: America/New_York
        weekly: {mon-fri: "09:00-17:00"}
        holidays: [2026-12-25]
      open: [{reply: open}]
      closed: [{reply: closed}]
""")
    run = Runner(sc)
    assert run(Trigger("message_received")).effects == (SendReply("open"),)
    assert run(Trigger("message_received"), now=NOW + timedelta(hours=8)).effects == (SendReply("closed"),)


def test_template_errors_become_notes(compile_yaml):
    sc = compile_yaml("""
on:
  message_received:
    - reply: "Hi {{ contact.fields.name }}!"
    - if: 'contact.fields.vip'
      then: [{reply: vip}]
""", "s.yaml")
    effects = Runner(sc)(Trigger("message_received")).effects
    assert isinstance(effects[0], Notify) and "s.yaml:4, reply" in effects[0].text and "name" in effects[0].text
    assert effects[1] == SendReply("Hi !")
    assert isinstance(effects[2], Notify) and "s.yaml:5, if" in effects[2].text


def test_step_cap_stops_a_run(compile_yaml):
    sc = compile_yaml("on:\n  message_received:\n" + "    - tag: x\n" * 20)
    result = Runner(sc, max_steps=5)(Trigger("message_received"))
    assert result.effects[:5] == (Tag("x"),) * 5
    assert isinstance(result.effects[5], Notify) and "stopped after 5 steps" in result.effects[5].text
    assert result.run is None


def test_with_params(compile_yaml):
    sc = compile_yaml("params: {greeting: hi}\non:\n  message_received: [{reply: '{{ params.greeting }}'}]")
    other = sc.with_params({"greeting": "hello {{ owner.display_name }}"})
    assert Runner(other)(Trigger("message_received"), facts()).effects == (SendReply("hello Alice"),)
    with pytest.raises(ValueError, match="unknown parameter colour"):
        sc.with_params({"colour": "red"})


def test_a_changed_scenario_drops_the_old_run(compile_yaml):
    a = compile_yaml("on:\n  message_received: [{wait_reply: x, timeout: 1m}]")
    b = compile_yaml("on:\n  message_received: [{wait_reply: y, timeout: 2m}, {reply: b}]")
    run = Runner(a)
    run(Trigger("message_received"))
    run.engine = Runner(b).engine
    result = run(Timeout())
    assert result.run is None and "scenario changed" in result.effects[0].text


def test_stray_events_without_a_run_do_nothing(compile_yaml):
    sc = compile_yaml("on:\n  message_received: [{reply: hi}]")
    run = Runner(sc)
    for event in (Timeout(), CustomerReply("x"), CallResult("c", 200, None), Trigger("agent_unavailable")):
        assert run(event).effects == () and run.run is None
