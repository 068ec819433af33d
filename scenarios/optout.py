"""Opt-out keywords: the whole message, trimmed, case-insensitive; never a substring.

"STOP" opts out; "please stop by tomorrow" is an ordinary message. The lists follow the 2024 US
carrier rules (CTIA); the `optout` system scenario decides what to answer.
"""
from __future__ import annotations

OPT_OUT = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
OPT_IN = frozenset({"start", "unstop", "yes"})
HELP = frozenset({"help", "info"})
WORDS = {**{w: "opt_out" for w in OPT_OUT}, **{w: "opt_in" for w in OPT_IN}, **{w: "help" for w in HELP}}
LONGEST = max(map(len, WORDS))


def classify(text: str) -> str | None:
    """"opt_out", "opt_in", "help", or None for an ordinary message."""
    if len(text) > LONGEST + 64:  # surely not a keyword; skip the work on long texts
        return None
    return WORDS.get(text.strip().casefold())


__all__ = ["HELP", "OPT_IN", "OPT_OUT", "classify"]
