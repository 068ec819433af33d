"""The SMPP sender: an OutboundSms as submit_sm PDUs on a bound client, one id per part.

Rules: GSM-7 when the text fits the alphabet, UCS-2 otherwise, split so that no escape pair
or surrogate pair is cut (gateway.smpp.text); parts go out in order on the same client, which
owns windows, rate limits and throttling pauses. Each part's message id is returned in the
canonical form receipts are compared in.
"""
from __future__ import annotations

import random

from gateway.messages import SENT, OutboundSms, SendError, SendResult
from gateway.smpp.address import smpp_address
from gateway.smpp.client import SmppClient, SmppError, SubmitPart
from gateway.smpp.receipts import canonical_id
from gateway.smpp.text import TooLong, encode_parts


class SmppSender:
    def __init__(self, client: SmppClient, *, concat: str = "udh", max_parts: int = 10,
                 id_base: str = "str", registered_delivery: int = 1):
        self.client = client
        self.concat, self.max_parts, self.id_base = concat, max_parts, id_base
        self.registered_delivery = registered_delivery

    async def send(self, sms: OutboundSms) -> SendResult:
        """Submit every part; the ids of all of them."""
        ids = [canonical_id(await self._submit(part), self.id_base) for part in self._parts(sms)]
        return SendResult(tuple(ids), SENT)

    def _parts(self, sms: OutboundSms) -> list[SubmitPart]:
        try:
            specs = encode_parts(sms.text, max_parts=self.max_parts, concat=self.concat, ref=random.randrange(256))
        except TooLong as err:
            raise SendError(str(err), temporary=False, code="TOO_LONG") from None
        source, dest = smpp_address(sms.sender), smpp_address(sms.recipient)
        return [SubmitPart(*source, *dest, spec.esm_class, spec.data_coding, spec.short_message,
                           self.registered_delivery, spec.tlvs) for spec in specs]

    async def _submit(self, part: SubmitPart) -> str:
        try:
            return await self.client.submit(part)
        except SmppError as err:
            raise SendError(str(err), temporary=err.temporary, code=err.name) from None

    async def close(self) -> None:
        """The client's life is its connector's, not the sender's."""
