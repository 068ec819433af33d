"""Connectors through the admin API: added, changed and removed while didchat runs; secrets write-only.

On both databases, against a running didchat over HTTP: an SMS API connector added with a number
on it carries an SMS both ways at once; its secret is answered as `${didchat:stored}`, sealed in the
database and absent from every table, answer and log line; a change without the secret keeps it, a
new secret replaces it at once; an SMPP connector added binds to a real SMPP server over TCP,
rebinds when its settings change and unbinds when it is removed; bad bodies name the field.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest
import sqlalchemy as sa

from chat.cli import signed_sms
from chat.domain.secrets import STORED
from tests.chat.test_admin_api import api_as, fields
from tests.conftest import CUSTOMER, until
from tests.fakes.smsc import TestSmsc

NUMBER = "+14155550188"
SMPP_DEST = "14155550189"
SECRET = "generic-secret-0123456789-abcdef"
NEW_SECRET = "generic-secret-9876543210-fedcba"


def generic(name: str = "gen", secret: str = SECRET, **more) -> dict:
    return {"type": "generic", "name": name, "secret": secret, "send_url": "http://127.0.0.1:9/send", "numbers": [NUMBER],
            **more}


async def webhook(server, connector: str, secret: str, text: str, to: str = NUMBER) -> int:
    """A generic webhook signed with `secret` for `connector`; its HTTP status."""
    from pydantic import SecretStr

    from gateway.providers.generic import GenericSettings as GenericConnector

    conn = GenericConnector(type="generic", name=connector, secret=SecretStr(secret), send_url="http://127.0.0.1:9/")
    return (await server.post(*signed_sms(server.config, conn, CUSTOMER, to, text)))[0]


async def every_value(server) -> dict[str, str]:
    """Every row of every table, as text, by table."""
    async with server.services.db.read() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        return {name: repr([tuple(row) for row in await conn.execute(sa.text(f'SELECT * FROM "{name}"'))]) for name in names}


def holding(tables: dict[str, str], text: str) -> list[str]:
    return [name for name, rows in tables.items() if text in rows]


@pytest.fixture
async def server(make_server):
    return await make_server()


async def test_a_connector_added_through_the_api_carries_sms_both_ways_at_once(server):
    api = await api_as(server, "ada")
    twilio = server.twilio_api
    status, made, headers = await api("POST", "/api/v1/connectors", {
        "type": "twilio", "name": "tw2", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
        "api_base": twilio.base_url, "numbers": [NUMBER]})
    assert status == 201, made
    assert headers["Location"] == "/api/v1/connectors/tw2"
    assert made["auth_token"] == STORED and made["state"] == "configured" and made["serves"] == [NUMBER]
    status, number, _ = await api("POST", "/api/v1/numbers", {"number": NUMBER, "user": "alice", "connector": "tw2"})
    assert status == 201, number
    alice = await server.connect("alice")
    url, body, signed = signed_sms(server.config, server.services.directory.config.connector_of(NUMBER), CUSTOMER, NUMBER, "via tw2")
    assert url.endswith("/webhooks/twilio/tw2")
    assert (await server.post(url, body, signed))[0] == 200
    [msg] = [m for m in await alice.wait_messages(1) if m["direction"] == "in"]
    assert msg["text"] == "via tw2" and msg["to"] == NUMBER
    sent = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "answer via tw2", "client_id": "c-1"})
    assert "error" not in sent, sent
    await until(lambda: any(r.get("Body") == "answer via tw2" for r in twilio.requests), 5, "the reply at the provider")
    [reply] = [r for r in twilio.requests if r.get("Body") == "answer via tw2"]
    assert reply["From"] == NUMBER and reply["To"] == CUSTOMER
    assert reply["StatusCallback"].endswith("/webhooks/twilio/tw2/status")


async def test_a_secret_is_write_only_sealed_and_in_no_table_answer_or_log(server, caplog, capfd):
    api = await api_as(server, "ada")
    caplog.set_level(logging.DEBUG)
    bad = {**generic("bad"), "numbers": [server.alice_number]}  # refused: its error must not show the secret either
    assert (await api("POST", "/api/v1/connectors", bad))[0] == 422
    status, made, _ = await api("POST", "/api/v1/connectors", generic())
    assert status == 201, made
    assert await webhook(server, "gen", SECRET, "first") == 404  # signed right: refused only as no access number is on it
    assert (await api("POST", "/api/v1/numbers", {"number": NUMBER, "user": "bob", "connector": "gen"}))[0] == 201
    assert await webhook(server, "gen", SECRET, "second") == 200
    answers = [await api("GET", path) for path in ("/api/v1/connectors", "/api/v1/connectors/gen", "/api/v1/config",
                                                   "/api/v1/audit")]
    assert all(status == 200 for status, _, _ in answers)
    assert answers[1][1]["secret"] == STORED
    assert SECRET not in json.dumps([body for _, body, _ in answers])
    stored = await every_value(server)
    assert holding(stored, SECRET) == [] and holding(stored, "sealed:") == ["config_revisions"]
    assert SECRET not in caplog.text and SECRET not in "".join(capfd.readouterr())

    # a change that leaves the secret out keeps it; a new one replaces it at once
    status, changed, _ = await api("PATCH", "/api/v1/connectors/gen", {"send_url": "http://127.0.0.1:9/other"})
    assert status == 200 and changed["send_url"] == "http://127.0.0.1:9/other" and changed["secret"] == STORED
    assert await webhook(server, "gen", SECRET, "third") == 200
    assert (await api("PATCH", "/api/v1/connectors/gen", {"secret": NEW_SECRET}))[0] == 200
    assert await webhook(server, "gen", SECRET, "fourth") == 403
    assert await webhook(server, "gen", NEW_SECRET, "fifth") == 200
    assert holding(await every_value(server), NEW_SECRET) == []
    assert NEW_SECRET not in caplog.text and NEW_SECRET not in "".join(capfd.readouterr())

    # the whole document read and put back changes nothing, secrets included
    status, running, headers = await api("GET", "/api/v1/config")
    status, again, _ = await api("PUT", "/api/v1/config", {"document": running["document"]}, {"If-Match": headers["ETag"]})
    assert status == 200 and again["revision"] == running["revision"]
    assert await webhook(server, "gen", NEW_SECRET, "sixth") == 200


async def test_a_secret_may_be_an_environment_reference_each_node_reads(server, monkeypatch):
    api = await api_as(server, "ada")
    monkeypatch.setenv("DIDCHAT_TEST_GEN_SECRET", SECRET)
    status, made, _ = await api("POST", "/api/v1/connectors", generic(secret="${DIDCHAT_TEST_GEN_SECRET}"))
    assert status == 201, made
    assert made["secret"] == "${DIDCHAT_TEST_GEN_SECRET}"
    assert (await api("POST", "/api/v1/numbers", {"number": NUMBER, "user": "bob", "connector": "gen"}))[0] == 201
    assert await webhook(server, "gen", SECRET, "by reference") == 200
    assert holding(await every_value(server), SECRET) == []
    status, refused, _ = await api("POST", "/api/v1/connectors", generic("gen2", secret="${DIDCHAT_TEST_NOT_SET}", numbers=[]))
    assert status == 422 and fields(refused) == ["secret"]
    assert "DIDCHAT_TEST_NOT_SET is not set" in refused["errors"][0]["detail"]


async def test_bad_connector_bodies_get_422_naming_the_field(server):
    api = await api_as(server, "ada")
    cases = [
        ({"type": "smpp", "name": "s", "host": "127.0.0.1", "port": 2775, "system_id": "x", "password": "longer-than-8"},
         ["password"]),
        ({"type": "smpp", "name": "s", "host": "127.0.0.1", "port": 70000, "system_id": "x", "password": "p"}, ["port"]),
        ({"type": "generic", "name": "g", "secret": "short", "send_url": "http://127.0.0.1:9/"}, ["secret"]),
        ({"type": "carrier-pigeon", "name": "c"}, ["type"]),
        ({"type": "twilio", "name": "tw", "account_sid": "AC1", "auth_token": "t"}, ["name"]),  # exists already
        (generic("g2", numbers=[server.alice_number]), ["numbers[0]"]),  # tw owns it
    ]
    for body, named in cases:
        status, answer, _ = await api("POST", "/api/v1/connectors", body)
        assert status in (409, 422) and fields(answer) == named, (body, answer)
    status, answer, _ = await api("PATCH", "/api/v1/connectors/tw", {"host": "127.0.0.1"})
    assert status == 422 and fields(answer) == ["host"], answer
    status, answer, _ = await api("DELETE", "/api/v1/connectors/tw")
    assert status == 409 and "still named" in answer["detail"], answer
    assert (await api("GET", "/api/v1/connectors/nothing"))[0] == 404


@pytest.fixture
async def smsc():
    server = await TestSmsc("added", "pw1", window=50, id_format="hex").start()
    yield server
    await server.stop()


async def test_an_smpp_connector_added_binds_rebinds_on_a_change_and_unbinds_when_removed(server, smsc):
    api = await api_as(server, "ada")
    link = {"type": "smpp", "name": "added", "host": "127.0.0.1", "port": smsc.port, "system_id": "added",
            "password": "pw1", "reconnect_min": 0.1, "reconnect_max": 0.5, "enquire_link_seconds": 2,
            "numbers": ["+" + SMPP_DEST]}
    status, made, _ = await api("POST", "/api/v1/connectors", link)
    assert status == 201 and made["password"] == STORED, made
    await smsc.wait_for_sessions(1, timeout=10)
    assert (await api("POST", "/api/v1/numbers", {"number": "+" + SMPP_DEST, "user": "alice"}))[0] == 201

    async def state() -> str:
        return (await api("GET", "/api/v1/connectors/added"))[1]["state"]
    async with asyncio.timeout(5):
        while await state() != "bound":
            await asyncio.sleep(0.05)
    alice = await server.connect("alice")
    assert await smsc.deliver("12125550199", SMPP_DEST, b"over the added bind") == 0
    [msg] = [m for m in await alice.wait_messages(1) if m["direction"] == "in"]
    assert msg["text"] == "over the added bind"

    status, changed, _ = await api("PATCH", "/api/v1/connectors/added", {"window": 20})
    assert status == 200 and changed["window"] == 20
    await smsc.until(lambda: len(smsc.binds_taken) >= 2, 10, "a second bind")
    await smsc.until(lambda: len(smsc.sessions) == 1, 5, "one session")
    assert await smsc.deliver("12125550199", SMPP_DEST, b"over the new bind") == 0
    await until(lambda: any(m["text"] == "over the new bind" for m in alice.messages), 5, "the MO on the new bind")

    assert (await api("DELETE", f"/api/v1/numbers/%2B{SMPP_DEST}"))[0] == 204
    assert (await api("DELETE", "/api/v1/connectors/added"))[0] == 204
    await smsc.until(lambda: not smsc.sessions, 10, "the unbind")
    assert (await api("GET", "/api/v1/connectors/added"))[0] == 404
    assert [c["name"] for c in (await api("GET", "/api/v1/connectors"))[1]["items"]] == ["tw"]


async def test_simulate_sms_finds_a_connector_added_through_the_api(server):
    api = await api_as(server, "ada")
    assert (await api("POST", "/api/v1/connectors", generic()))[0] == 201
    assert (await api("POST", "/api/v1/numbers", {"number": NUMBER, "user": "bob", "connector": "gen"}))[0] == 201
    bob = await server.connect("bob")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "simulate", "sms", "-c", str(server.config_path), "--from", CUSTOMER, "--to", NUMBER,
        "--text", "simulated", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    await until(lambda: any(m["text"] == "simulated" for m in bob.messages), 5, "the simulated SMS")


async def test_a_token_without_write_writes_nothing_anywhere(server):
    from chat.agents import admin
    from chat.agents.api import WRITE
    from tests.chat.test_admin_api import Api

    ada = await api_as(server, "ada")
    status, made, _ = await ada("POST", "/api/v1/tokens", {"name": "reader", "scopes": ["read"]})
    assert status == 201, made
    reader = Api(server, made["token"])
    writes = [op for op in admin.every_operation() if op.need == WRITE and op.resource != "tokens"]
    assert {op.resource for op in writes} >= {"users", "teams", "numbers", "callback-numbers", "connectors", "config",
                                               "contacts", "scenarios"}
    for op in writes:
        status, answer, _ = await reader(op.method, op.path.replace("{key}", "tw"), {} if op.body is not None else None)
        assert status == 403 and "no scope to write" in answer["detail"], (op.method, op.path, answer)
    assert (await reader("GET", "/api/v1/connectors/tw"))[1]["auth_token"] == STORED
