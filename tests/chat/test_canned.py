"""Canned replies (both databases): an agent uses the global ones, their team's and their own, never another
agent's nor another team's, the most personal winning a shortcut; bad shortcuts, texts and variables are refused
naming the field; admins keep the global and team ones over HTTP (a token without write scope writes nothing);
every change reaches the tabs of the agents concerned as `canned_changed`."""
from __future__ import annotations

import pytest

from tests.chat.test_admin_api import Api, api_as, fields
from tests.conftest import until

TEAMS = "teams: {support: [alice], sales: [bob]}\n"
BASE = "/api/v1/canned-replies"


@pytest.fixture
async def server(make_server):
    return await make_server(extra=TEAMS)


def listed(answer: dict) -> list[tuple[str, str, str | None, bool]]:
    assert answer["ok"], answer
    return [(r["shortcut"], r["scope"], r["team"], r["shadowed"]) for r in answer["replies"]]


def text_of(answer: dict, shortcut: str) -> str:
    """The text an agent gets when typing /shortcut: the reply that wins."""
    return next(r["text"] for r in answer["replies"] if r["shortcut"].lower() == shortcut and not r["shadowed"])


async def shared(api: Api, scope: str, shortcut: str, text: str, team: str | None = None) -> dict:
    status, reply, _ = await api("POST", BASE, {"scope": scope, "team": team, "shortcut": shortcut, "text": text})
    assert status == 201, reply
    return reply


async def test_an_agent_gets_global_team_and_own_replies_and_the_most_personal_wins(server):
    ada = await api_as(server, "ada")
    await shared(ada, "global", "hello", "Hello {contact.name}, this is {agent.display_name}.")
    await shared(ada, "global", "bye", "Goodbye!")
    await shared(ada, "team", "hello", "Support here, {contact.name}.", "support")
    await shared(ada, "team", "refund", "Refunds take 5 days.", "support")
    await shared(ada, "team", "pricing", "Our prices: …", "sales")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    assert (await bob.call("canned_save", {"shortcut": "mine", "text": "Bob's own"}))["ok"]
    assert (await alice.call("canned_save", {"shortcut": "refund", "text": "Alice's refund"}))["ok"]
    mine = await alice.call("canned_save", {"shortcut": "Hello", "text": "Hi, Alice here."})
    assert mine["ok"] and mine["reply"]["scope"] == "personal" and mine["reply"]["shortcut"] == "Hello"

    answer = await alice.call("canned")
    assert answer["variables"] == ["contact.name", "contact.number", "agent.name", "agent.display_name"]
    assert listed(answer) == [
        ("bye", "global", None, False),
        ("Hello", "personal", None, False), ("hello", "team", "support", True), ("hello", "global", None, True),
        ("refund", "personal", None, False), ("refund", "team", "support", True),
    ]
    assert text_of(answer, "hello") == "Hi, Alice here."
    assert listed(await bob.call("canned")) == [
        ("bye", "global", None, False), ("hello", "global", None, False), ("mine", "personal", None, False),
        ("pricing", "team", "sales", False)]

    assert (await alice.call("canned_delete", {"id": mine["reply"]["id"]}))["ok"]
    answer = await alice.call("canned")
    assert text_of(answer, "hello") == "Support here, {contact.name}."  # the team's shadows the global one
    assert ("hello", "global", None, True) in listed(answer)


async def test_an_agent_changes_and_deletes_only_their_own(server):
    ada = await api_as(server, "ada")
    team_reply = await shared(ada, "team", "hours", "9 to 5", "support")
    alice, bob = await server.connect("alice"), await server.connect("bob")
    made = (await alice.call("canned_save", {"shortcut": "sig", "text": "— {agent.name}"}))["reply"]
    changed = await alice.call("canned_save", {"id": made["id"], "shortcut": "sign", "text": "Best, {agent.display_name}"})
    assert changed["ok"] and changed["reply"] == {"id": made["id"], "scope": "personal", "team": None, "shortcut": "sign",
                                                 "text": "Best, {agent.display_name}"}
    for event, payload in (("canned_save", {"id": made["id"], "shortcut": "stolen", "text": "x"}),
                           ("canned_delete", {"id": made["id"]})):
        refused = await bob.call(event, payload)
        assert refused["ok"] is False and refused["field"] == "id", refused
    for event, payload in (("canned_save", {"id": team_reply["id"], "shortcut": "hours", "text": "never"}),
                           ("canned_delete", {"id": team_reply["id"]})):
        refused = await alice.call(event, payload)  # a team's reply is the admins' to change
        assert refused["ok"] is False and refused["field"] == "id", refused
    assert listed(await alice.call("canned")) == [("hours", "team", "support", False), ("sign", "personal", None, False)]
    assert text_of(await alice.call("canned"), "sign") == "Best, {agent.display_name}"


async def test_bad_shortcuts_texts_and_variables_are_refused_naming_the_field(server):
    alice = await server.connect("alice")
    assert (await alice.call("canned_save", {"shortcut": "thanks", "text": "Thanks!"}))["ok"]
    cases = [
        ({"shortcut": "two words", "text": "x"}, "shortcut", "letters"),
        ({"shortcut": "/thanks", "text": "x"}, "shortcut", "letters"),
        ({"shortcut": "", "text": "x"}, "shortcut", "at least 1"),
        ({"shortcut": "a" * 33, "text": "x"}, "shortcut", "at most 32"),
        ({"shortcut": "merci-é", "text": "x"}, "shortcut", "letters"),
        ({"shortcut": "THANKS", "text": "again"}, "shortcut", "/THANKS is taken among yours"),
        ({"shortcut": "ok", "text": ""}, "text", "at least 1"),
        ({"shortcut": "ok", "text": "   \n"}, "text", "blank"),
        ({"shortcut": "ok", "text": "x" * 1601}, "text", "at most 1600"),
        ({"shortcut": "ok", "text": "Hi {contact.nam}!"}, "text", "unknown variable {contact.nam}"),
        ({"shortcut": "ok", "text": "Hi {agent.name}, {customer}"}, "text", "unknown variable {customer}"),
        ({"shortcut": "ok", "text": "nul\x00"}, "text", "U+0000"),
        ({"shortcut": "ok", "text": 5}, "text", "string"),
        ({"shortcut": "ok", "text": "x", "scope": "global"}, "scope", "Extra inputs"),
    ]
    for payload, field, words in cases:
        answer = await alice.call("canned_save", payload)
        assert answer["ok"] is False and answer["field"] == field and words in answer["error"], (payload, answer)
    allowed = await alice.call("canned_save", {"shortcut": "ok", "text": "Braces stay text: {} { x } {{ }}"})
    assert allowed["ok"], allowed
    assert [r["shortcut"] for r in (await alice.call("canned"))["replies"]] == ["ok", "thanks"]


async def test_admins_keep_global_and_team_replies_over_http_and_a_reader_writes_nothing(server):
    ada = await api_as(server, "ada")
    status, made, headers = await ada("POST", BASE, {"scope": "team", "team": "support", "shortcut": "refund",
                                                     "text": "Refunds take 5 days, {contact.name}."})
    assert status == 201 and headers["Location"] == f"{BASE}/{made['id']}"
    assert made["scope"] == "team" and made["team"] == "support" and made["created_at"]
    item = f"{BASE}/{made['id']}"
    assert (await ada("GET", item))[1] == made
    status, again, _ = await ada("POST", BASE, {"scope": "team", "team": "support", "shortcut": "Refund", "text": "x"})
    assert status == 409 and fields(again) == ["shortcut"]
    assert (await ada("POST", BASE, {"scope": "team", "team": "sales", "shortcut": "refund", "text": "ok"}))[0] == 201
    for body, field in (({"scope": "team", "shortcut": "a", "text": "x"}, "team"),
                        ({"scope": "team", "team": "nobody", "shortcut": "a", "text": "x"}, "team"),
                        ({"scope": "global", "team": "support", "shortcut": "a", "text": "x"}, "team"),
                        ({"scope": "personal", "shortcut": "a", "text": "x"}, "scope"),
                        ({"scope": "global", "shortcut": "a b", "text": "x"}, "shortcut"),
                        ({"scope": "global", "shortcut": "a", "text": "{agent.nam}"}, "text")):
        status, answer, _ = await ada("POST", BASE, body)
        assert status == 422 and fields(answer) == [field], (body, answer)
    status, changed, _ = await ada("PUT", item, {"scope": "global", "shortcut": "refunds", "text": "Refunds: 5 days."})
    assert status == 200 and changed["scope"] == "global" and changed["team"] is None and changed["shortcut"] == "refunds"
    status, page, _ = await ada("GET", f"{BASE}?scope=team")
    assert status == 200 and page["total"] == 1 and [r["team"] for r in page["items"]] == ["sales"]
    assert [r["shortcut"] for r in (await ada("GET", f"{BASE}?q=FUNDS"))[1]["items"]] == ["refunds"]

    status, token, _ = await ada("POST", "/api/v1/tokens", {"name": "reader", "scopes": ["read"]})
    assert status == 201
    reader = Api(server, token["token"])
    assert (await reader("GET", item))[1]["shortcut"] == "refunds"
    for method, path, body in (("POST", BASE, {"scope": "global", "shortcut": "z", "text": "z"}),
                               ("PUT", item, {"scope": "global", "shortcut": "z", "text": "z"}), ("DELETE", item, None)):
        status, answer, _ = await reader(method, path, body)
        assert status == 403 and "no scope to write canned-replies" in answer["detail"], (method, answer)
        assert (await (await api_as(server, "alice"))(method, path, body))[0] == 403
    assert (await ada("GET", item))[1] == changed  # unchanged by the refused writes

    assert (await ada("DELETE", item))[0] == 204
    assert (await ada("GET", item))[0] == 404
    assert (await ada("DELETE", item))[0] == 404
    assert (await ada("GET", f"{BASE}/not-an-id"))[0] == 404
    assert (await ada("PUT", f"{BASE}/99999999999", {"scope": "global", "shortcut": "z", "text": "z"}))[0] == 404
    records = (await ada("GET", "/api/v1/audit?action=canned.*"))[1]["items"]
    assert [r["action"] for r in records] == ["canned.deleted", "canned.changed", "canned.created", "canned.created"]
    assert records[1]["details"] == {"scope": "global", "team": None, "shortcut": "refunds"}
    assert "Refunds" not in str(records)  # never the text


async def test_a_personal_reply_of_an_agent_is_not_the_admins(server):
    alice, ada = await server.connect("alice"), await api_as(server, "ada")
    mine = (await alice.call("canned_save", {"shortcut": "mine", "text": "private"}))["reply"]
    assert (await ada("GET", f"{BASE}/{mine['id']}"))[0] == 404
    assert (await ada("DELETE", f"{BASE}/{mine['id']}"))[0] == 404
    assert (await ada("GET", BASE))[1]["items"] == []
    assert text_of(await alice.call("canned"), "mine") == "private"


async def test_changes_reach_the_tabs_of_the_agents_concerned(server):
    ada = await api_as(server, "ada")
    alice, other_tab, bob = await server.connect("alice"), await server.connect("alice"), await server.connect("bob")

    await shared(ada, "team", "hours", "9 to 5", "support")
    await until(lambda: other_tab.pushed("canned_changed") and alice.pushed("canned_changed"), what="support told")
    assert other_tab.pushed("canned_changed") == [{}]
    assert text_of(await other_tab.call("canned"), "hours") == "9 to 5"

    assert (await alice.call("canned_save", {"shortcut": "sig", "text": "Alice"}))["ok"]
    await until(lambda: len(other_tab.pushed("canned_changed")) == 2, what="the other tab told")
    assert text_of(await other_tab.call("canned"), "sig") == "Alice"

    reply = await shared(ada, "global", "bye", "Goodbye!")
    await until(lambda: bob.pushed("canned_changed") and len(other_tab.pushed("canned_changed")) == 3, what="all told")
    assert len(bob.pushed("canned_changed")) == 1  # not the support team's reply, nor Alice's own
    assert text_of(await bob.call("canned"), "bye") == "Goodbye!"
    assert (await ada("DELETE", f"{BASE}/{reply['id']}"))[0] == 204
    await until(lambda: len(bob.pushed("canned_changed")) == 2, what="bob told of the deletion")
    assert listed(await bob.call("canned")) == []
