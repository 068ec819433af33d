"""The scenario file format as pydantic models: what a file may say, checked at the edge.

Rules: every mapping forbids unknown keys; a step is a mapping whose *kind key* (reply, if,
wait_reply, ...) says what it does, with its options as sibling keys; `close` and `stop` may be
written as a bare word. These models only check shape; `program.py` compiles them.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    field_validator,
)

DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def parse_duration(value: Any) -> timedelta:
    """`30s`, `5m`, `2h`, `1d`, `1h30m`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _positive(timedelta(seconds=value), str(value))
    m = DURATION.match(str(value)) if isinstance(value, str) else None
    if not m or not any(m.groups()):
        raise ValueError(f"{value!r} is not a duration (write 30s, 5m, 2h, 1d or 1h30m)")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return _positive(timedelta(days=d, hours=h, minutes=mi, seconds=s), value)


def _positive(delta: timedelta, text: str) -> timedelta:
    if delta <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be more than zero")
    return delta


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(lambda d: f"{int(d.total_seconds())}s"),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": DURATION.pattern}, {"type": "number"}],
                    "description": "30s, 5m, 2h, 1d, 1h30m, or seconds"}),
]
Text = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, (int, float, date)) and not isinstance(v, bool) else v)]
VarName = Annotated[str, Field(pattern=NAME)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Hours(Model):
    """Opening hours: a time zone, weekly hours, and holidays (closed all day)."""

    timezone: str
    weekly: dict[Text, Text | list[Text]]
    holidays: list[Text] = []


ROUTE_HELP = "write `route: owner`, `route: {user: NAME}` or `route: {team: NAME}`"


def _route(value: Any) -> Any:
    if value == "owner":
        return value
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("user", "team"):
        name = next(iter(value.values()))
        if isinstance(name, (str, int)) and not isinstance(name, bool) and str(name).strip():
            return {k: str(v) for k, v in value.items()}
    raise ValueError(f"{value!r} is not a route target: {ROUTE_HELP}")


RouteTarget = Annotated[Any, BeforeValidator(_route), WithJsonSchema({"anyOf": [
    {"const": "owner"},
    {"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"], "additionalProperties": False},
    {"type": "object", "properties": {"team": {"type": "string"}}, "required": ["team"], "additionalProperties": False},
]})]


class Reply(Model):
    """Send a text to the customer."""
    reply: Text


class If(Model):
    """Run `then` when the condition is true, else `else`."""
    if_: str = Field(alias="if")
    then: Steps
    else_: Steps = Field([], alias="else")


class Switch(Model):
    """Compare a value with each case (text, trimmed, case-insensitive); `default` when none fits."""
    switch: str
    cases: dict[Text, Steps]
    default: Steps = []


class Keywords(Model):
    """`then` when any keyword appears as a whole word (case-insensitive) in the text."""
    keywords: list[Text] = Field(min_length=1)
    text: Text | None = None
    then: Steps
    else_: Steps = Field([], alias="else")


class Regex(Model):
    """`then` when the regular expression matches the text; named groups become variables."""
    regex: str
    text: Text | None = None
    then: Steps
    else_: Steps = Field([], alias="else")


class BusinessHours(Model):
    """`open` steps during business hours, `closed` steps outside them."""
    business_hours: Hours
    open: Steps = []
    closed: Steps = []


class SetVars(Model):
    """Set variables (`vars.NAME`, or just `NAME`) for the rest of this run."""
    set: dict[Annotated[str, Field(pattern=NAME)], Any]


class WaitReply(Model):
    """Wait for the customer's next message and keep its text in a variable."""
    wait_reply: VarName
    timeout: Duration | None = Field(None, validate_default=True)
    on_timeout: Steps = []

    @field_validator("timeout", mode="after")
    @classmethod
    def _required(cls, value: timedelta | None) -> timedelta:
        if value is None:
            raise ValueError("required for a wait: every wait ends, e.g. `timeout: 10m`")
        return value


class Http(Model):
    """An HTTP request (e.g. a CRM lookup); the answer goes to a variable, `keep` fields to the contact."""
    http: Text
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, Text] = {}
    body: Any = None
    timeout: Duration = timedelta(seconds=10)
    save_as: VarName = "response"
    keep: list[Text] = []
    on_error: Steps = []


class SaveActivity(Model):
    """Save an activity (transcript and outcome) to the CRM; delivered once, retried until accepted."""
    save_activity: Text
    headers: dict[str, Text] = {}
    outcome: Text = ""
    body: Any = None


class Route(Model):
    """Give the conversation to the owner, another user, or a team's queue."""
    route: RouteTarget


class Notify(Model):
    """A note only the agent sees."""
    notify: Text


class TagStep(Model):
    """Tag the conversation."""
    tag: Text


class PresentStep(Model):
    """Present this number (a callback name or an E.164 number) in the conversation's replies, if its
    agent may present it."""
    present: Text


class Close(Model):
    """Close the conversation."""
    close: Literal[True] | None = None


class Stop(Model):
    """End this run here."""
    stop: Literal[True] | None = None


class SetTimer(Model):
    """Fire the `timer` trigger of this name after a while."""
    set_timer: VarName
    after: Duration


class OptOutStep(Model):
    """Record the contact's opt-out (true) or opt-in (false)."""
    opt_out: bool


KINDS: dict[str, type[Model]] = {
    "reply": Reply, "if": If, "switch": Switch, "keywords": Keywords, "regex": Regex,
    "business_hours": BusinessHours, "set": SetVars, "wait_reply": WaitReply, "http": Http,
    "save_activity": SaveActivity, "route": Route, "notify": Notify, "tag": TagStep, "present": PresentStep, "close": Close,
    "stop": Stop, "set_timer": SetTimer, "opt_out": OptOutStep,
}
BARE = ("close", "stop")
TAG = "step:"


def step_kind(value: Any) -> str | None:
    """The kind key of a step mapping, as a union tag."""
    if isinstance(value, str) and value in BARE:
        return TAG + value
    if isinstance(value, dict):
        kinds = [k for k in value if k in KINDS]
        return TAG + kinds[0] if len(kinds) == 1 else None
    if isinstance(value, BaseModel):
        return TAG + next(k for k, m in KINDS.items() if isinstance(value, m))
    return None


def _check_step(value: Any) -> Any:
    if isinstance(value, str) and value in BARE:
        return {value: None}
    if not isinstance(value, dict):
        raise ValueError(f"a step is a mapping such as `reply: Hello`, not {type(value).__name__}")
    kinds = [k for k in value if k in KINDS]
    if len(kinds) > 1:
        raise ValueError(f"one step per list item: found {', '.join(kinds)}; put each in its own `- ` item")
    if not kinds:
        raise ValueError(f"not a step: {_guess(list(value))}")
    return value


def _guess(keys: list[Any]) -> str:
    import difflib
    for key in keys:
        close = difflib.get_close_matches(str(key), list(KINDS), n=1)
        if close:
            return f"unknown step {key!r} (did you mean {close[0]!r}?)"
    return f"no step kind among {', '.join(map(str, keys)) or 'no keys'} (steps are: {', '.join(KINDS)})"


Step = Annotated[
    Union[tuple(Annotated[m, Tag(TAG + k)] for k, m in KINDS.items())],  # type: ignore[misc]  # noqa: UP007 - built from a table
    Discriminator(step_kind), BeforeValidator(_check_step),
]
Steps = list[Step]


class NoAgentReply(Model):
    """Steps to run when the agent has not answered the customer for a while."""
    after: Duration
    steps: Steps


class Triggers(Model):
    """What to do on each event; a trigger left out does nothing."""
    conversation_started: Steps = []
    message_received: Steps = []
    agent_unavailable: Steps = []
    no_agent_reply: NoAgentReply | None = None
    conversation_closed: Steps = []
    timer: dict[Annotated[str, Field(pattern=NAME)], Steps] = {}
    opt_out: Steps = []
    opt_in: Steps = []
    help: Steps = []


ParamValue = str | int | float | bool | None | list[Any] | dict[str, Any]


class ScenarioFile(Model):
    """A scenario file."""
    name: Annotated[str, Field(min_length=1)] | None = None
    description: str = ""
    params: dict[Annotated[str, Field(pattern=NAME)], ParamValue] = {}
    on: Triggers


for _model in (*KINDS.values(), NoAgentReply, Triggers, ScenarioFile):
    _model.model_rebuild()

__all__ = ["KINDS", "TAG", "ScenarioFile", "Triggers", "parse_duration"]
