"""Agent calls defined outside the namespace: each module's table of event name -> (payload model, handler).

Rules: a handler is `async def handler(app, agent, payload) -> dict` (the ack, `{"ok": True, ...}`); it raises
`chat.domain.outbound.Refused` for a request it refuses, as the namespace's own calls do. The namespace
(chat.agents.namespace) validates the payload with the model and answers every call, whatever happens.
"""
from __future__ import annotations

from chat.agents.canned_calls import CANNED_CALLS
from chat.agents.contact_calls import CONTACT_CALLS
from chat.agents.link_calls import LINK_CALLS
from chat.agents.search_calls import SEARCH_CALLS
from chat.agents.transcript_calls import TRANSCRIPT_CALLS

CALLS = {**SEARCH_CALLS, **CANNED_CALLS, **CONTACT_CALLS, **TRANSCRIPT_CALLS, **LINK_CALLS}
