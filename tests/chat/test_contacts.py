"""The contact panel (both databases): the number in E.164 and as its country writes it (US, UK, Germany), the CRM
fields a scenario kept (flattened for display), the conversation's tags, opt-outs and earlier conversations; a
rename reaches every tab and every agent with the contact in their list, and `sync`; nobody reads or renames the
contact of a conversation that is not theirs; hostile names are kept as text or refused naming `name`."""
from __future__ import annotations

import json

import pytest
from aiohttp import web

from tests.chat.test_admin_api import api_as
from tests.chat.test_scenarios_live import write
from tests.conftest import ALICE, BOB, CUSTOMER, until

UK, DE = "+442079460958", "+4930901820"
LOOKUP = """\
    name: lookup
    params:
      crm_url: ""
    on:
      conversation_started:
        - http: "{{ params.crm_url }}?phone={{ urlEncode(contact.number) }}"
          keep: [name, tier, address, orders, vip]
        - tag: gold
        - route: owner
"""


@pytest.fixture
async def crm():
    """A CRM that knows every caller as Jane Doe, with nested fields."""
    async def lookup(request: web.Request) -> web.Response:
        return web.json_response({"name": "Jane Doe", "tier": "gold", "address": {"city": "London", "zip": "N1 9GU"},
                                  "orders": [1017, 1018], "vip": True, "internal": "not kept"})

    app = web.Application()
    app.router.add_get("/contacts", lookup)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/contacts"
    await runner.cleanup()


async def conversation_from(server, agent, sender: str = CUSTOMER, to: str = ALICE, text: str = "hello") -> int:
    before = len(agent.messages)
    assert (await server.simulate_sms(sender, to, text))[0] == 200
    await until(lambda: any(m["text"] == text for m in agent.messages[before:]), what=f"{text!r} delivered")
    return next(m for m in agent.messages[before:] if m["text"] == text)["conversation_id"]


def names_in_sync(sync: dict) -> dict[int, str | None]:
    return {c["id"]: c["contact"]["name"] for c in sync["conversations"]}


async def test_the_panel_shows_the_number_both_ways_the_crm_fields_tags_and_earlier_conversations(make_server, tmp_path, crm):
    server = await make_server(extra=write(tmp_path, "lookup", LOOKUP), alice=f', scenario: lookup, scenario_params: {{crm_url: "{crm}"}}')
    alice = await server.connect("alice")
    first = await conversation_from(server, alice, text="first")
    assert (await alice.call("close", {"conversation_id": first}))["ok"]
    cid = await conversation_from(server, alice, text="second")
    await until(lambda: any(c["id"] == cid and c["tags"] for c in alice.pushed("conversation")), what="the tag")
    answer = await alice.call("contact", {"conversation_id": cid})
    assert answer["ok"], answer
    panel = answer["contact"]
    assert (panel["name"], panel["number"], panel["national"], panel["country"]) == ("Jane Doe", CUSTOMER, "(212) 555-0199", "US")
    assert panel["fields"] == {"name": "Jane Doe", "tier": "gold", "address.city": "London", "address.zip": "N1 9GU",
                               "orders": "[1017, 1018]", "vip": "true"}
    assert panel["tags"] == ["gold"] and panel["opted_out"] is False and panel["opted_out_of"] == []
    assert [(c["id"], [m["text"] for m in c["messages"]]) for c in panel["conversations"]] == [(first, ["first"])]
    assert panel["conversations"] == (await alice.call("history", {"conversation_id": cid}))["conversations"]


async def test_numbers_of_other_countries_are_shown_as_their_country_writes_them(didchat_server):
    alice = await didchat_server.connect("alice")
    uk = await conversation_from(didchat_server, alice, UK, text="hello from London")
    de = await conversation_from(didchat_server, alice, DE, text="hallo aus Berlin")
    panel = (await alice.call("contact", {"conversation_id": uk}))["contact"]
    assert (panel["number"], panel["national"], panel["country"], panel["name"], panel["fields"]) == (
        UK, "020 7946 0958", "GB", None, {})
    assert (await didchat_server.simulate_sms(DE, ALICE, "STOP"))[0] == 200
    await until(lambda: any(c["id"] == de and c.get("opted_out") for c in alice.pushed("conversation")), what="the STOP")
    panel = (await alice.call("contact", {"conversation_id": de}))["contact"]
    assert (panel["number"], panel["national"], panel["country"]) == (DE, "030 901820", "DE")
    assert panel["opted_out"] is True and panel["opted_out_of"] == [ALICE]


async def test_a_rename_reaches_every_tab_and_every_agent_with_the_contact_and_sync(didchat_server):
    server = didchat_server
    alice, other_tab, bob = await server.connect("alice"), await server.connect("alice"), await server.connect("bob")
    cid = await conversation_from(server, alice, text="to alice")
    bobs = await conversation_from(server, bob, to=BOB, text="to bob")  # the same customer on Bob's number
    renamed = await alice.call("contact_rename", {"conversation_id": cid, "name": "  Jane Doe  "})
    assert renamed == {"ok": True, "contact": {"number": CUSTOMER, "name": "Jane Doe"}}
    for client in (alice, other_tab, bob):
        await until(lambda c=client: {"number": CUSTOMER, "name": "Jane Doe"} in c.pushed("contact"), what="the rename")
    assert names_in_sync(await other_tab.call("sync")) == {cid: "Jane Doe"}
    assert names_in_sync(await bob.call("sync")) == {bobs: "Jane Doe"}
    assert (await bob.call("contact", {"conversation_id": bobs}))["contact"]["name"] == "Jane Doe"

    for cleared in ("", None, "   "):
        assert (await bob.call("contact_rename", {"conversation_id": bobs, "name": cleared}))["contact"]["name"] is None
    await until(lambda: other_tab.pushed("contact")[-1] == {"number": CUSTOMER, "name": None}, what="the name cleared")
    assert names_in_sync(await alice.call("sync")) == {cid: None}

    ada = await api_as(server, "ada")
    records = (await ada("GET", "/api/v1/audit?action=contact.renamed"))[1]["items"]
    assert [(r["actor"], r["details"]) for r in records] == [
        ("bob", {"conversation_id": bobs, "cleared": True})] * 3 + [("alice", {"conversation_id": cid, "cleared": False})]
    assert "Jane" not in json.dumps(records)  # names are personal data: not in the audit log


async def test_nobody_reads_or_renames_the_contact_of_a_conversation_not_theirs(didchat_server):
    alice, bob = await didchat_server.connect("alice"), await didchat_server.connect("bob")
    cid = await conversation_from(didchat_server, alice)
    assert (await alice.call("contact_rename", {"conversation_id": cid, "name": "Jane"}))["ok"]
    missing = await bob.call("contact", {"conversation_id": 999_999})
    for event, payload in (("contact", {"conversation_id": cid}), ("contact_rename", {"conversation_id": cid, "name": "Mallory"})):
        refused = await bob.call(event, payload)
        assert refused["ok"] is False and refused["field"] == "conversation_id", refused
        assert refused["error"] == missing["error"].replace("999999", str(cid))  # as for one that does not exist
        assert "Jane" not in str(refused)
    assert bob.pushed("contact") == []
    assert (await alice.call("contact", {"conversation_id": cid}))["contact"]["name"] == "Jane"
    ada = await didchat_server.connect("ada")  # an admin may look (as at its media), earlier conversations included
    panel = (await ada.call("contact", {"conversation_id": cid}))["contact"]
    mine = (await alice.call("contact", {"conversation_id": cid}))["contact"]
    assert panel["name"] == "Jane" and panel["conversations"] == mine["conversations"]


@pytest.mark.parametrize("name, kept", [
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("\u200fשרה כהן", "\u200fשרה כהן"),  # a right-to-left mark is a mark: kept
    ("Zoë 🧑‍💻 O'Brien-Łukasz", "Zoë 🧑‍💻 O'Brien-Łukasz"),
    ("x" * 200, "x" * 200),
])
async def test_hostile_but_printable_names_are_kept_as_text(didchat_server, name, kept):
    alice = await didchat_server.connect("alice")
    cid = await conversation_from(didchat_server, alice)
    assert (await alice.call("contact_rename", {"conversation_id": cid, "name": name}))["contact"]["name"] == kept
    assert (await alice.call("contact", {"conversation_id": cid}))["contact"]["name"] == kept
    assert names_in_sync(await alice.call("sync")) == {cid: kept}


async def test_names_too_long_or_with_control_characters_are_refused_naming_the_field(didchat_server):
    alice = await didchat_server.connect("alice")
    cid = await conversation_from(didchat_server, alice)
    assert (await alice.call("contact_rename", {"conversation_id": cid, "name": "Jane"}))["ok"]
    for name, words in (("x" * 10_000, "200 characters at most"), ("x" * 201, "this one has 201"), ("Jane\x00", "U+0000"),
                        ("Jane\nDoe", "U+000A"), ("\u202eeoD enaJ", "U+202E"), ("Jane\u2066Doe", "U+2066"),
                        ("Jane\x9bDoe", "U+009B"), ("Jane\ud800", "U+D800"), ("Jane\u2028Doe", "U+2028")):
        refused = await alice.call("contact_rename", {"conversation_id": cid, "name": name})
        assert refused["ok"] is False and refused["field"] == "name" and words in refused["error"], (name[:20], refused)
        assert len(refused["error"]) < 200  # never the name echoed back
    for payload in ({"conversation_id": cid, "name": 5}, {"conversation_id": cid}, {"conversation_id": cid, "name": ["x"]}):
        refused = await alice.call("contact_rename", payload)
        assert refused["ok"] is False and refused["field"] == "name", refused
    assert (await alice.call("contact", {"conversation_id": cid}))["contact"]["name"] == "Jane"
    assert len(alice.pushed("contact")) == 1
