"""The scenario language and engine: files, validation with file:line errors, CEL conditions,
templates, business hours, a pure engine (events in, effects out), opt-out keywords and a test
runner. It imports nothing else of didchat and does no I/O of its own."""
from scenarios.engine import MAX_STEPS, Engine
from scenarios.events import (
    SYSTEM_TRIGGERS,
    TRIGGERS,
    Call,
    CallResult,
    Close,
    CustomerReply,
    Notify,
    OptOut,
    Present,
    Result,
    Route,
    SaveActivity,
    SendReply,
    SetContactFields,
    SetTimer,
    Tag,
    Timeout,
    Trigger,
)
from scenarios.optout import classify
from scenarios.program import Scenario, load_scenario, parse_scenario, system_scenario
from scenarios.source import Document, Problem, SourceError, load, parse

__all__ = [
    "Document", "Problem", "SourceError", "load", "parse",
    "Scenario", "load_scenario", "parse_scenario", "system_scenario",
    "Engine", "MAX_STEPS", "Result", "TRIGGERS", "SYSTEM_TRIGGERS",
    "Trigger", "CustomerReply", "Timeout", "CallResult",
    "SendReply", "Route", "Notify", "Tag", "Present", "Close", "SetContactFields", "Call", "SaveActivity",
    "SetTimer", "OptOut", "classify",
]
