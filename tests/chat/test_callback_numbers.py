"""Callback numbers as contact centers have them (both databases): display names, languages and
categories in the picker, a personal number an administrator hides, and the automatic choice of a new
conversation's number (the customer's prefix or country, a tag they carry, the number last presented to them; a
team's rules for its members)."""
from __future__ import annotations

from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import ALICE, CUSTOMER, MAIN, until

UK = "+12125550160"  # a second shared line (the test connector owns it below)
NAMED = f'named: {{main: "{MAIN}"}}'
RICH = (f'named: {{main: {{number: "{MAIN}", display_name: "Sales (EN)", language: en, category: sales}}, '
        f'uk: {{number: "{UK}", display_name: "UK line", language: en-GB}}}}')


def rich(select: str = "", hide: bool = False):
    def edit(text: str) -> str:
        text = text.replace(NAMED, RICH + (f"\n  select: {select}" if select else ""))
        text = text.replace(f'numbers: ["{ALICE}",', f'numbers: ["{UK}", "{ALICE}",')
        text = text.replace("may_present: [main]}", "may_present: [main, uk]" + (", hide_personal: true}" if hide else "}"))
        return text
    return edit


async def test_the_picker_shows_display_names_languages_and_categories(routed):  # noqa: F811
    server = await routed(rich())
    alice = await server.connect("alice")
    numbers = {n["number"]: n for n in (await alice.call("sync", {}))["numbers"]}
    assert numbers[MAIN] | {} == {"number": MAIN, "label": "Sales (EN)", "default": False, "language": "en",
                                  "category": "sales", "mms": True}  # on Twilio: it sends pictures (Media)
    assert numbers[UK]["label"] == "UK line" and numbers[UK]["language"] == "en-GB"
    assert numbers[ALICE]["default"] is True and numbers[ALICE]["label"] == "personal"


async def test_a_hidden_personal_number_is_never_presented(routed):  # noqa: F811
    server = await routed(rich(hide=True))
    alice = await server.connect("alice")
    assert ALICE not in {n["number"] for n in (await alice.call("sync", {}))["numbers"]}
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hi"))[0] == 200  # texted to her personal number
    [msg] = await alice.wait_messages(1)
    sent = await alice.call("send", {"conversation_id": msg["conversation_id"], "text": "hello", "client_id": "h-1"})
    assert sent["ok"], sent
    [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert request["From"] == MAIN  # the account's number, not hers
    refused = await alice.call("present", {"conversation_id": msg["conversation_id"], "number": ALICE})
    assert refused["ok"] is False and refused["field"] == "number"


async def test_a_new_conversations_number_is_chosen_by_prefix_then_by_the_last_one_used(routed):  # noqa: F811
    server = await routed(rich(select='[{prefix: "+44", number: uk}, {last_used: true}]'))
    alice = await server.connect("alice")
    to_uk = await alice.call("send", {"to": "+442071838750", "text": "Hello London", "client_id": "p-1"})
    assert to_uk["ok"] and to_uk["conversation"]["presented_number"] == UK
    first = await alice.call("send", {"to": CUSTOMER, "from": MAIN, "text": "from sales", "client_id": "p-2"})
    assert first["ok"]
    assert (await alice.call("close", {"conversation_id": first["conversation"]["id"]}))["ok"]
    again = await alice.call("send", {"to": CUSTOMER, "text": "us again", "client_id": "p-3"})
    assert again["ok"] and again["conversation"]["presented_number"] == MAIN  # the number last used with them
    other = await alice.call("send", {"to": "+12125550177", "text": "someone new", "client_id": "p-4"})
    assert other["ok"] and other["conversation"]["presented_number"] == ALICE  # no rule applies: her default


PRESENTING = """\
    name: presenting
    on:
      message_received:
        - keywords: [london]
          then:
            - present: uk
        - keywords: [elsewhere]
          then:
            - present: "+12125550102"
"""


async def test_a_scenario_step_presents_a_number_the_agent_may_present(routed, tmp_path):  # noqa: F811
    from tests.chat.test_scenarios_live import write

    server = await routed(lambda text: rich()(text).replace(f'{{number: "{ALICE}", user: alice}}',
                                                            f'{{number: "{ALICE}", user: alice, scenario: presenting}}'),
                          write(tmp_path, "presenting", PRESENTING))
    alice = await server.connect("alice")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "London"))[0] == 200
    [msg] = await alice.wait_messages(1)
    cid = msg["conversation_id"]
    await until(lambda: any(c["id"] == cid and c["presented_number"] == UK for c in alice.pushed("conversation")),
                what="the UK line presented")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "elsewhere"))[0] == 200  # Bob's number: not hers to present
    await until(lambda: any(m["direction"] == "note" and "may not present" in m["text"] for m in alice.messages))
    sent = await alice.call("send", {"conversation_id": cid, "text": "hello from London", "client_id": "l-1"})
    assert sent["ok"], sent
    [request] = await server.twilio_api.wait_for_requests(1, timeout=10)
    assert request["From"] == UK


async def test_an_agent_chooses_her_own_default_for_new_conversations(routed):  # noqa: F811
    server = await routed(rich())
    alice, other_tab = await server.connect("alice"), await server.connect("alice")
    refused = await alice.call("default_number", {"number": "+12125550102"})  # Bob's
    assert refused["ok"] is False and refused["field"] == "number"
    chosen = await alice.call("default_number", {"number": UK})
    assert chosen["ok"] and [n["number"] for n in chosen["numbers"] if n["default"]] == [UK]
    await until(lambda: other_tab.pushed("numbers"), what="her other tab told")
    assert [n["number"] for n in (await alice.call("sync", {}))["numbers"] if n["default"]] == [UK]
    sent = await alice.call("send", {"to": "+12125550177", "text": "hi", "client_id": "d-1"})
    assert sent["ok"] and sent["conversation"]["presented_number"] == UK
    assert (await alice.call("default_number", {"number": None}))["ok"]
    again = await alice.call("send", {"to": "+12125550178", "text": "hi", "client_id": "d-2"})
    assert again["ok"] and again["conversation"]["presented_number"] == ALICE  # the configured default again


TAGGING = """\
    name: tagging
    on:
      conversation_started:
        - tag: vip
"""


async def test_a_teams_rule_chooses_by_a_tag_the_customer_carries_and_replaces_the_accounts(routed, tmp_path):  # noqa: F811
    from tests.chat.test_scenarios_live import write

    edit = rich(select='[{prefix: "+1", number: main}]')  # the account's: not used, the team has its own
    server = await routed(lambda text: edit(text).replace(f'{{number: "{ALICE}", user: alice}}',
                                                          f'{{number: "{ALICE}", user: alice, scenario: tagging}}'),
                          "\nteams:\n  sales: {members: [alice], select: [{tag: vip, number: uk}, {country: IE, number: uk}]}\n"
                          + write(tmp_path, "tagging", TAGGING))
    alice = await server.connect("alice")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "hi, it's me"))[0] == 200  # the scenario tags them vip
    [msg] = await alice.wait_messages(1)
    await until(lambda: any("vip" in (c.get("tags") or []) for c in alice.pushed("conversation")), what="tagged vip")
    assert (await alice.call("close", {"conversation_id": msg["conversation_id"]}))["ok"]

    vip = await alice.call("send", {"to": CUSTOMER, "text": "a new offer for you", "client_id": "t-1"})
    assert vip["ok"] and vip["conversation"]["presented_number"] == UK  # the team's rule, by the tag
    other = await alice.call("send", {"to": "+12125550177", "text": "hello", "client_id": "t-2"})
    assert other["ok"] and other["conversation"]["presented_number"] == ALICE  # no rule gives one: her default
    dublin = await alice.call("send", {"to": "+35312345678", "text": "hello Dublin", "client_id": "t-3"})
    assert dublin["ok"] and dublin["conversation"]["presented_number"] == UK  # by the customer's country
