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
