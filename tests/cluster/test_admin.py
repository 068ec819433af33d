"""Administration across nodes (real processes on PostgreSQL and Redis): an agent and her number added
through node A's admin API are in force on node B within a second, and an SMS through node B reaches
her there, with no restart."""
from __future__ import annotations

import time

from tests.chat.test_admin_api import NEW_NUMBER, Api
from tests.conftest import CUSTOMER


async def test_a_change_on_node_a_is_in_force_on_node_b_within_a_second(make_cluster):
    cluster = await make_cluster(nodes=2)
    a, b = cluster.nodes
    status, body = await a.login("ada")
    assert status == 200, body
    api_a = Api(a, body["token"])
    status, body = await b.login("ada")
    api_b = Api(b, body["token"])
    assert (await api_a("POST", "/api/v1/users", {"name": "carol", "password": "carol-password-1"}))[0] == 201
    assert (await api_a("POST", "/api/v1/numbers", {"number": NEW_NUMBER, "user": "carol", "connector": "tw"}))[0] == 201
    changed_at = time.monotonic()
    while (await api_b("GET", f"/api/v1/numbers/{NEW_NUMBER}"))[0] != 200:
        assert time.monotonic() - changed_at < 1.0, "node B still runs the old configuration after a second"
    carol = await b.connect("carol", "carol-password-1")
    assert (await cluster.simulate_sms(node=1, sender=CUSTOMER, to=NEW_NUMBER, text="hi carol"))[0] in (200, 204)
    [msg] = await carol.wait_messages(1)
    assert msg["text"] == "hi carol"
    status, users, _ = await api_b("GET", "/api/v1/users?q=carol")
    assert [u["name"] for u in users["items"]] == ["carol"]


async def _generic_webhook(node, connector: str, secret: str, text: str, to: str) -> int:
    from types import SimpleNamespace

    import aiohttp
    from pydantic import SecretStr

    from chat.cli import signed_sms
    from gateway.providers.generic import GenericSettings as GenericConnector

    conn = GenericConnector(type="generic", name=connector, secret=SecretStr(secret), send_url="http://127.0.0.1:9/")
    _, body, headers = signed_sms(SimpleNamespace(public_url=node.url), conn, CUSTOMER, to, text)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{node.url}/webhooks/generic/{connector}", data=body, headers=headers) as answer:
            return answer.status


async def test_a_connector_added_or_rekeyed_on_node_a_works_on_node_b_within_a_second_and_binds_once(make_cluster):
    from tests.chat.test_admin_connectors import NEW_SECRET, NUMBER, SECRET, generic
    from tests.fakes.smsc import TestSmsc

    cluster = await make_cluster(nodes=2)
    a, b = cluster.nodes
    api_a = Api(a, (await a.login("ada"))[1]["token"])
    assert (await api_a("POST", "/api/v1/connectors", generic()))[0] == 201
    assert (await api_a("POST", "/api/v1/numbers", {"number": NUMBER, "user": "bob", "connector": "gen"}))[0] == 201
    changed_at = time.monotonic()
    while await _generic_webhook(b, "gen", SECRET, "via b", NUMBER) != 200:
        assert time.monotonic() - changed_at < 1.0, "node B does not take the new connector's webhooks after a second"
    assert (await api_a("PATCH", "/api/v1/connectors/gen", {"secret": NEW_SECRET}))[0] == 200
    changed_at = time.monotonic()
    while await _generic_webhook(b, "gen", SECRET, "old secret", NUMBER) != 403:
        assert time.monotonic() - changed_at < 1.0, "node B still takes the old secret after a second"
    assert await _generic_webhook(b, "gen", NEW_SECRET, "new secret", NUMBER) == 200

    smsc = await TestSmsc("added", "pw1", one_bind=True).start()
    try:
        status, made, _ = await api_a("POST", "/api/v1/connectors", {
            "type": "smpp", "name": "added", "host": "127.0.0.1", "port": smsc.port, "system_id": "added",
            "password": "pw1", "reconnect_min": 0.1, "reconnect_max": 0.5})
        assert status == 201, made
        await smsc.wait_for_sessions(1, timeout=10)
        api_b = Api(b, (await b.login("ada"))[1]["token"])
        deadline = time.monotonic() + 5  # both nodes run it: one binds, the other stands by
        states: set[str] = set()
        while states != {"bound", "standby"}:
            assert time.monotonic() < deadline, f"connector states {states}"
            assert len(smsc.sessions) == 1 and len(smsc.binds_taken) == 1
            states = {(await api("GET", "/api/v1/connectors/added"))[1]["state"] for api in (api_a, api_b)}
        assert (await api_a("DELETE", "/api/v1/connectors/added"))[0] == 204
        await smsc.until(lambda: not smsc.sessions, 10, "the unbind")
    finally:
        await smsc.stop()
