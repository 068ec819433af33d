"""What each compiled step does to an execution: one short function per step kind, in a table.

Rules: a step either emits effects, changes the run's variables, pushes a block to run next,
or suspends the run on a wait with a deadline. Rendering problems become Notify effects.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from scenarios import events as ev
from scenarios import steps as s
from scenarios.expressions import text_of

if TYPE_CHECKING:
    from scenarios.engine import _Execution as X

CALL_GRACE = timedelta(seconds=10)  # the caller answers every Call; this only bounds the wait


def reply(x: X, st: s.ReplyStep) -> None:
    text = x.render(st.text, st)
    if text.strip():  # an empty auto-reply means "no reply", never an empty SMS
        x.effects.append(ev.SendReply(text))


def if_(x: X, st: s.IfStep) -> None:
    value = x.evaluate(st, st.condition)
    if value is not None and not isinstance(value, bool):
        x.note(f"{st.condition.source}: gave {text_of(value)!r}, not true or false", st)
    x.enter(st.then if value is True else st.else_)


def switch(x: X, st: s.SwitchStep) -> None:
    value = text_of(x.evaluate(st, st.value)).strip().casefold()
    x.enter(st.cases.get(value, st.default))


def match(x: X, st: s.MatchStep) -> None:
    text = x.render(st.text, st) if st.text is not None else x.scope["message"]["text"]
    found = st.pattern.search(text)
    if found and st.kind == "regex":
        for name, value in found.groupdict().items():
            x.set_var(name, value)
    x.enter(st.then if found else st.else_)


def business_hours(x: X, st: s.HoursStep) -> None:
    x.enter(st.open if st.hours.is_open(x.now) else st.closed)


def set_vars(x: X, st: s.SetStep) -> None:
    for name, value in st.values.items():
        x.set_var(name, x.value(value, st))


def wait_reply(x: X, st: s.WaitStep) -> None:
    x.run["wait"] = {"kind": "reply", "var": st.var, "until": (x.now + st.timeout).isoformat(),
                     "on_timeout": st.on_timeout, "after": x.run["message"].get("id")}


def http(x: X, st: s.HttpStep) -> None:
    call_id = x.next_id()
    body = x.value(st.body, st) if st.body is not None else None
    headers = {k: x.render(v, st) for k, v in st.headers.items()}
    seconds = st.timeout.total_seconds()
    x.effects.append(ev.Call(call_id, st.method, x.render(st.url, st), headers, body, seconds))
    until = x.now + st.timeout + CALL_GRACE
    x.run["wait"] = {"kind": "call", "call_id": call_id, "until": until.isoformat(), "save_as": st.save_as,
                     "keep": list(st.keep), "on_error": st.on_error}


def save_activity(x: X, st: s.SaveStep) -> None:
    conversation = x.scope.get("conversation") or {}
    if "transcript" not in conversation:
        x.scope["conversation"] = {**conversation, "transcript": []}
    # Without an outcome of its own, the activity carries the one the agent picked when closing.
    outcome = x.render(st.outcome, st) or str((x.scope.get("conversation") or {}).get("outcome") or "")
    body = x.value(st.body, st) if st.body is not None else _activity(x, outcome)
    headers = {k: x.render(v, st) for k, v in st.headers.items()}
    x.effects.append(ev.SaveActivity(x.render(st.url, st), headers, body, "activity-" + x.next_id()))


def _activity(x: X, outcome: str) -> dict[str, Any]:
    """The default activity: who, which conversation, the outcome, tags and the transcript."""
    contact, conversation = x.scope.get("contact") or {}, x.scope["conversation"]
    return {"phone": contact.get("number"), "name": contact.get("name"),
            "conversation_id": conversation.get("id"), "access_number": conversation.get("access_number"),
            "outcome": outcome, "tags": list(conversation.get("tags") or []),
            "transcript": conversation["transcript"], "at": x.now.isoformat()}


def route(x: X, st: s.RouteStep) -> None:
    if st.target == "owner":
        x.effects.append(ev.Route("owner", None))
        return
    name = x.render(st.name, st).strip()
    if not name:
        x.note(f"route to {st.target}: the name is empty; the conversation stays where it is", st)
        return
    x.effects.append(ev.Route(st.target, name))


def text(x: X, st: s.TextStep) -> None:
    value = x.render(st.text, st).strip()
    if value:
        kinds = {"notify": ev.Notify, "tag": ev.Tag, "present": ev.Present}
        x.effects.append(kinds[st.kind](value))


def close(x: X, st: s.CloseStep) -> None:
    x.effects.append(ev.Close())


def stop(x: X, st: s.StopStep) -> None:
    x.run["frames"].clear()


def set_timer(x: X, st: s.TimerStep) -> None:
    x.effects.append(ev.SetTimer(st.name, x.now + st.after))


def opt_out(x: X, st: s.OptOutStep) -> None:
    x.effects.append(ev.OptOut(st.opted_out))


ACTIONS: dict[type, Callable[[Any, Any], None]] = {
    s.ReplyStep: reply, s.IfStep: if_, s.SwitchStep: switch, s.MatchStep: match,
    s.HoursStep: business_hours, s.SetStep: set_vars, s.WaitStep: wait_reply, s.HttpStep: http,
    s.SaveStep: save_activity, s.RouteStep: route, s.TextStep: text, s.CloseStep: close,
    s.StopStep: stop, s.TimerStep: set_timer, s.OptOutStep: opt_out,
}
