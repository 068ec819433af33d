"""The admin API (/api/v1): who may call what, errors that name the field, changes in force at once.

On both databases, against a running didchat over HTTP: an admin adds an agent and her number
and she receives an SMS on it with no restart; an agent gets 403 on every operation and a
supervisor may only read; a reassigned number takes its open conversation along; what the API
changed outlives a restart with the same file, and a changed file wins over it.
"""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from chat.agents import admin
from tests.conftest import ALICE, BOB, CUSTOMER, PASSWORD, until

NEW_NUMBER = "+14155550177"


class Api:
    def __init__(self, server, token: str | None):
        self.url, self.token = server.url, token

    async def __call__(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, Any, Any]:
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url + path, json=body, headers=sent) as r:
                data = await r.json(content_type=None) if r.status != 204 else None
                return r.status, data, r.headers.copy()


async def api_as(server, name: str, password: str = PASSWORD) -> Api:
    status, body = await server.login(name, password)
    assert status == 200, body
    return Api(server, body["token"])


def fields(answer: dict) -> list[str]:
    return [e["field"] for e in answer.get("errors", ())]


@pytest.fixture
async def server(make_server):
    return await make_server(extra='teams: {support: [alice, bob]}\n')


async def test_an_admin_adds_an_agent_with_a_number_and_she_gets_an_sms_at_once(server):
    api = await api_as(server, "ada")
    status, user, headers = await api("POST", "/api/v1/users", {
        "name": "carol", "display_name": "Carol", "password": "carol-password-1", "teams": ["support"]})
    assert status == 201, user
    assert headers["Location"] == "/api/v1/users/carol"
    assert user["teams"] == ["support"] and "password" not in user and user["role"] == "agent"
    status, number, _ = await api("POST", "/api/v1/numbers", {"number": "+1 (415) 555-0177", "user": "carol", "connector": "tw"})
    assert status == 201, number
    assert number["number"] == NEW_NUMBER  # normalized as in a file
    carol = await server.connect("carol", "carol-password-1")
    assert (await server.simulate_sms(CUSTOMER, NEW_NUMBER, "hello carol"))[0] in (200, 204)
    [msg] = await carol.wait_messages(1)
    assert msg["text"] == "hello carol"
    status, listed, _ = await api("GET", "/api/v1/users?team=support")
    assert [u["name"] for u in listed["items"]] == ["alice", "bob", "carol"] and listed["total"] == 3


async def test_an_agent_gets_403_everywhere_and_no_token_401(server):
    agent, nobody = await api_as(server, "alice"), Api(server, None)
    for op in admin.every_operation():
        path = op.path.replace("{key}", "alice")
        body = {} if op.body is not None else None
        assert (await agent(op.method, path, body))[0] == 403, (op.method, path)
        status, answer, headers = await nobody(op.method, path, body)
        assert status == 401 and headers["Content-Type"].startswith("application/problem+json"), (op.method, path)
        assert answer["status"] == 401 and "Bearer" in answer["detail"]
        assert (await Api(server, "not-a-token")(op.method, path, body))[0] == 401


async def test_a_supervisor_reads_and_may_not_write(server):
    admin = await api_as(server, "ada")
    assert (await admin("POST", "/api/v1/users", {"name": "sue", "password": "sue-password-1", "role": "supervisor"}))[0] == 201
    sup = await api_as(server, "sue", "sue-password-1")
    status, users, _ = await sup("GET", "/api/v1/users")
    assert status == 200 and "sue" in [u["name"] for u in users["items"]]
    status, answer, _ = await sup("PATCH", "/api/v1/users/alice", {"display_name": "Mallory"})
    assert status == 403 and "supervisors may not write" in answer["detail"]


async def test_bad_bodies_get_422_naming_the_field(server):
    api = await api_as(server, "ada")
    status, answer, _ = await api("POST", "/api/v1/users", {"name": "Bad Name!", "password": "long-enough-1"})
    assert status == 422 and fields(answer) == ["name"]
    status, answer, _ = await api("POST", "/api/v1/users", {"name": "dave"})
    assert status == 422 and fields(answer) == ["password"]
    status, answer, _ = await api("POST", "/api/v1/users", {"name": "dave", "password": "x" * 9, "colour": "red"})
    assert status == 422 and fields(answer) == ["colour"]
    status, answer, _ = await api("PATCH", "/api/v1/users/alice", {"default_number": "nowhere"})
    assert status == 422 and fields(answer) == ["default_number"] and "neither a callback name nor a number" in answer["detail"]
    status, answer, _ = await api("POST", "/api/v1/numbers", {"number": NEW_NUMBER, "user": "nobody", "connector": "tw"})
    assert status == 422 and fields(answer) == ["user"] and "no user named 'nobody'" in answer["detail"]
    status, answer, _ = await api("POST", "/api/v1/numbers", {"number": "12", "user": "alice"})
    assert status == 422 and fields(answer) == ["number"]
    status, answer, _ = await api("POST", "/api/v1/numbers", {"number": NEW_NUMBER, "user": "alice", "connector": "nope"})
    assert status == 422 and fields(answer) == ["connector"]
    status, answer, _ = await api("POST", "/api/v1/users", [1, 2])
    assert status == 422 and answer["detail"] == "the body must be a JSON object"
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/v1/users", data="{nope", headers={
                "Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}) as r:
            assert r.status == 400 and "not JSON" in (await r.json(content_type=None))["detail"]
    status, answer, _ = await api("GET", "/api/v1/users?limit=0")
    assert status == 400 and fields(answer) == ["limit"]
    assert (await api("GET", "/api/v1/users/nobody"))[0] == 404
    assert (await api("POST", "/api/v1/users", {"name": "alice", "password": "x" * 9}))[0] == 409
    status, _, _ = await api("GET", "/api/v1/users")
    assert status == 200  # nothing above changed anything
    assert (await api("GET", "/api/v1/config"))[1]["revision"] == 1


async def test_a_reassigned_number_takes_its_open_conversation_to_the_new_owner(server):
    alice, bob = await server.connect("alice"), await server.connect("bob")
    await server.simulate_sms(CUSTOMER, ALICE, "are you there?")
    await alice.wait_messages(1)
    api = await api_as(server, "ada")
    status, number, _ = await api("PATCH", f"/api/v1/numbers/{ALICE}", {"user": "bob"})
    assert status == 200 and number["user"] == "bob"
    await until(lambda: any("reassigned" in m["text"] for m in bob.messages), 5.0, "the conversation moved to bob")
    await server.simulate_sms(CUSTOMER, ALICE, "hello again")
    await until(lambda: any(m["text"] == "hello again" for m in bob.messages), 5.0, "the next text reaches bob")
    assert not any(m["text"] == "hello again" for m in alice.messages)


async def test_a_user_still_named_elsewhere_is_not_deleted_and_a_deleted_one_is_signed_out(server):
    bob = await server.connect("bob")
    api = await api_as(server, "ada")
    status, answer, _ = await api("DELETE", "/api/v1/users/bob")
    assert status == 409 and "access_numbers[1].user" in fields(answer)
    assert (await api("PATCH", f"/api/v1/numbers/{BOB}", {"user": "alice"}))[0] == 200
    assert (await api("DELETE", "/api/v1/users/bob"))[0] == 204
    status, team, _ = await api("GET", "/api/v1/teams/support")
    assert team["members"] == ["alice"]  # gone from his team too
    await until(lambda: bob.pushed("session_ended") == [{"reason": "removed"}], 5.0, "bob's open tab signed out")
    assert (await server.login("bob"))[0] == 401


async def test_a_disabled_user_is_signed_out_at_once_and_may_not_log_in_until_enabled(server):
    alice = await server.connect("alice")
    api = await api_as(server, "ada")
    status, answer, _ = await api("PATCH", "/api/v1/users/alice", {"disabled": True})
    assert status == 422 and answer["errors"][0]["field"] == "access_numbers[0].user"  # her number first
    assert (await api("PATCH", f"/api/v1/numbers/{ALICE}", {"user": "bob"}))[0] == 200
    status, user, _ = await api("PATCH", "/api/v1/users/alice", {"disabled": True})
    assert status == 200 and user["disabled"] is True
    await until(lambda: alice.pushed("session_ended") == [{"reason": "removed"}], 5.0, "her open tab signed out")
    assert (await server.login("alice"))[0] == 401
    assert (await api("PATCH", "/api/v1/users/alice", {"disabled": False}))[0] == 200
    assert (await server.login("alice"))[0] == 200
    status, answer, _ = await api("PATCH", "/api/v1/users/ada", {"disabled": True})
    assert status == 409 and "no enabled admin" in answer["detail"]


async def test_a_password_reset_takes_effect_and_the_old_one_fails(server):
    api = await api_as(server, "ada")
    assert (await api("PATCH", "/api/v1/users/bob", {"password": "brand-new-secret"}))[0] == 200
    assert (await server.login("bob"))[0] == 401
    assert (await server.login("bob", "brand-new-secret"))[0] == 200


async def test_a_stale_if_match_is_refused_and_the_document_round_trips(server):
    api = await api_as(server, "ada")
    status, running, headers = await api("GET", "/api/v1/config")
    assert status == 200 and headers["ETag"] == '"1"' and "password" not in str(running["document"])
    assert (await api("PATCH", "/api/v1/users/alice", {"display_name": "Alice A."}))[0] == 200
    status, answer, _ = await api("PUT", "/api/v1/config", {"document": running["document"]}, {"If-Match": '"1"'})
    assert status == 412 and "revision 2" in answer["detail"]
    status, again, _ = await api("PUT", "/api/v1/config", {"document": running["document"]}, {"If-Match": '"2"'})
    assert status == 200 and again["revision"] == 3 and again["document"] == running["document"]


async def test_api_changes_outlive_a_restart_with_the_same_file_and_a_changed_file_wins(make_server):
    server = await make_server()
    api = await api_as(server, "ada")
    assert (await api("PATCH", "/api/v1/users/bob", {"display_name": "Robert"}))[0] == 200
    await server.stop()
    await server.start()
    api = await api_as(server, "ada")
    assert (await api("GET", "/api/v1/users/bob"))[1]["display_name"] == "Robert"
    await server.stop()
    server.config_path.write_text(server.config_path.read_text().replace("display_name: Bob", "display_name: Bobby"))
    server.reload_config()
    await server.start()
    api = await api_as(server, "ada")
    assert (await api("GET", "/api/v1/users/bob"))[1]["display_name"] == "Bobby"
    assert (await api("GET", "/api/v1/config"))[1]["revision"] == 3


async def test_the_openapi_document_describes_every_operation(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    described = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert described == {(op.method, op.path) for op in admin.every_operation()}
    create_user = doc["paths"]["/api/v1/users"]["post"]
    schema = doc["components"]["schemas"]["NewUser"]
    assert "password" in schema["properties"] and "password_hash" not in schema["properties"]
    assert {"201", "401", "403", "409", "422"} <= set(create_user["responses"])
