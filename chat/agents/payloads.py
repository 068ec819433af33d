"""The payloads of the agents' Socket.IO calls (chat.agents.namespace), one pydantic model per event.

Rules: every model forbids unknown fields and is frozen; numbers that reach the store are bounded by what it
stores (STORE_INT_MAX); the checks of one field are here, those between the store's rows are in chat.domain.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chat.domain.outbound import STORE_INT_MAX, Id
from chat.domain.transfers import MAX_NOTE

Seq = Annotated[int, Field(strict=True, ge=0, le=STORE_INT_MAX)]
Cursor = Annotated[int, Field(ge=0, le=STORE_INT_MAX)]  # lax: JSON object keys are strings


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncPayload(Payload):
    cursors: dict[Annotated[int, Field(ge=1, le=STORE_INT_MAX)], Cursor] = Field(default_factory=dict, max_length=10_000)
    since: float | None = Field(default=None, ge=0, le=2**33, allow_inf_nan=False)  # unix seconds


class PresencePayload(Payload):
    state: Literal["ready", "not_ready"]


class ReadPayload(Payload):
    conversation_id: Id
    seq: Seq


class PresentPayload(Payload):
    conversation_id: Id
    number: str = Field(strict=True, min_length=1, max_length=32)


class ClosePayload(Payload):
    conversation_id: Id
    outcome: str | None = Field(default=None, strict=True, max_length=64)


class ReopenPayload(Payload):
    conversation_id: Id


class SnoozePayload(Payload):
    conversation_id: Id
    until: float | None = Field(ge=0, le=2**33, allow_inf_nan=False)  # unix seconds; null: back now


class HistoryPayload(Payload):
    conversation_id: Id


class TransferTarget(Payload):
    user: str | None = Field(default=None, strict=True, min_length=1, max_length=64)
    team: str | None = Field(default=None, strict=True, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> TransferTarget:
        if (self.user is None) == (self.team is None):
            raise ValueError("give either user or team")
        return self


class DefaultNumberPayload(Payload):
    number: str | None = Field(strict=True, min_length=1, max_length=32)


class BoardPayload(Payload):
    state: Literal["open", "waiting", "closed"] | None = None
    user: str | None = Field(default=None, strict=True, max_length=64)
    queue: str | None = Field(default=None, strict=True, max_length=64)
    number: str | None = Field(default=None, strict=True, max_length=32)
    stuck: bool = False


class AssignPayload(Payload):
    conversation_id: Id
    to: TransferTarget


class MonitorPayload(Payload):
    conversation_id: Id


class TransferPayload(Payload):
    conversation_id: Id
    to: TransferTarget
    note: str | None = Field(default=None, strict=True, max_length=MAX_NOTE)


class ClaimPayload(Payload):
    conversation_id: Id


class AuthPayload(Payload):
    token: str = Field(strict=True, max_length=4096)
