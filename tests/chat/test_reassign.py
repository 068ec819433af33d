"""A number moved to another owner in the configuration (both databases): after the restart its open
conversation goes to the new owner (or stays, with `keep`), and a removed user's conversations are
never orphaned."""
from __future__ import annotations

from tests.chat.test_routes import routed  # noqa: F401 - the fixture
from tests.conftest import ALICE, CUSTOMER, until

ALICE_LINE = f'{{number: "{ALICE}", user: alice}}'


def to_bob(text: str) -> str:
    return text.replace(ALICE_LINE, f'{{number: "{ALICE}", user: bob}}')


async def open_conversation(server) -> int:
    alice = await server.connect("alice")
    assert (await server.simulate_sms(CUSTOMER, ALICE, "my question"))[0] == 200
    [msg] = await alice.wait_messages(1)
    await server.stop()
    return msg["conversation_id"]


async def test_a_reassigned_number_takes_its_open_conversation_to_the_new_owner(routed):  # noqa: F811
    cid = await open_conversation(await routed())
    again = await routed(to_bob)
    bob = await again.connect("bob")
    await until(lambda: any(c["id"] == cid for c in bob.pushed("conversation")), what="bob gets it")
    await until(lambda: any(m["direction"] == "note" and "Moved from Alice to Bob" in m["text"] for m in bob.messages),
                what="the note saying why")  # its messages come in an event of their own, after the conversation
    alice = await again.connect("alice")
    assert [c["id"] for c in (await alice.call("sync", {}))["conversations"]] == []
    assert (await again.simulate_sms(CUSTOMER, ALICE, "still there?"))[0] == 200
    await until(lambda: any(m["text"] == "still there?" for m in bob.messages), what="the next text goes to bob")


async def test_with_keep_the_old_owner_keeps_it_until_closed(routed):  # noqa: F811
    keep = "\nconversations: {on_number_reassign: keep}\n"
    cid = await open_conversation(await routed(extra=keep))
    again = await routed(to_bob, keep)
    alice = await again.connect("alice")
    assert [c["id"] for c in (await alice.call("sync", {}))["conversations"]] == [cid]


async def test_a_removed_users_conversation_goes_to_the_numbers_new_owner(routed):  # noqa: F811
    cid = await open_conversation(await routed())

    def without_alice(text: str) -> str:
        return "\n".join(line for line in to_bob(text).splitlines() if "{name: alice," not in line) + "\n"
    again = await routed(without_alice)
    bob = await again.connect("bob")
    await until(lambda: any(c["id"] == cid for c in bob.pushed("conversation")), what="bob gets it")
