"""Every decodable deliver_sm is stored (issue 8, point 3, the SMPP side): text the databases cannot
hold (U+0000, a lone surrogate) becomes U+FFFD, the user data is kept, and the answer is ROK."""
from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from chat.store.tables import messages
from tests.conftest import SMPP_NUMBER, smpp_connector
from tests.fakes.smsc import TestSmsc

DEST = SMPP_NUMBER.lstrip("+")
CUSTOMER = "12125550199"
NUL_UCS2 = "a".encode("utf-16-be") + b"\x00\x00" + "b".encode("utf-16-be")
LONE_SURROGATE_UCS2 = "x".encode("utf-16-be") + b"\xd8\x00" + "y".encode("utf-16-be")


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", window=50).start()
    yield server
    await server.stop()


async def stored_rows(server):
    async with server.services.db.read() as conn:
        query = sa.select(messages.c.text, messages.c.original).where(messages.c.direction == "in").order_by(messages.c.id)
        return (await conn.execute(query)).all()


CASES = [  # (data_coding, user data, what the agent sees)
    (8, NUL_UCS2, "a\ufffdb"),  # UCS-2 U+0000: PostgreSQL refuses it
    (8, LONE_SURROGATE_UCS2, "x\ufffdy"),  # UCS-2 high surrogate without its pair: both refuse it
    (3, b"nul\x00latin-1", "nul\ufffdlatin-1"),  # Latin-1
    (1, b"ia5\x00", "ia5\ufffd"),  # IA5
    (4, b"\x00\x01", "\ufffd\x01"),  # 8-bit data, read as Latin-1
]


async def test_unstorable_characters_become_fffd_the_bytes_are_kept_and_the_answer_is_rok(make_server, smsc):
    server = await make_server(connectors=smpp_connector(smsc.port))
    await smsc.wait_for_sessions(1, timeout=10)
    alice = await server.connect("alice")
    for data_coding, payload, _ in CASES:
        assert await smsc.deliver(CUSTOMER, DEST, payload, data_coding=data_coding) == 0
    first, last = "Hello ".encode("utf-16-be"), NUL_UCS2  # a long message, U+0000 in its last part
    for seq, chunk in ((1, first), (2, last)):
        assert await smsc.deliver(CUSTOMER, DEST, bytes([5, 0, 3, 9, 2, seq]) + chunk, esm_class=0x40, data_coding=8) == 0
    assert await smsc.deliver(CUSTOMER, DEST, "Привет".encode("utf-16-be"), data_coding=8) == 0
    expected = [(text, payload) for _, payload, text in CASES] + [("Hello a\ufffdb", first + last), ("Привет", None)]
    await alice.wait_messages(len(expected))
    assert [m["text"] for m in alice.messages] == [text for text, _ in expected]
    rows = await stored_rows(server)
    assert [(r.text, r.original and base64.b64decode(r.original)) for r in rows] == expected
