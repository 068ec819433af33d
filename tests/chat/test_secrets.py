"""Connector secrets in a running document (chat.domain.secrets): sealed, kept, revealed, never shown."""
from __future__ import annotations

from chat.domain.secrets import CHANGED, STORED, Vault, display, reveal, seal

KEY = "k" * 40


def doc(secret: str, name: str = "gen") -> dict:
    return {"connectors": [{"type": "generic", "name": name, "secret": secret, "send_url": "http://127.0.0.1:9/"},
                           {"type": "smpp", "name": "smsc", "host": "127.0.0.1", "port": 2775, "system_id": "x",
                            "password": "pw"}]}


def test_a_plain_secret_is_sealed_and_opens_to_itself_and_only_with_its_key():
    vault = Vault(KEY)
    stored = seal(doc("s" * 20), {}, vault)
    sealed = stored["connectors"][0]["secret"]
    assert sealed.startswith("sealed:") and "s" * 20 not in repr(stored)
    plain, problems = reveal(stored, vault)
    assert problems == [] and plain["connectors"][0]["secret"] == "s" * 20 and plain["connectors"][1]["password"] == "pw"
    _, problems = reveal(stored, Vault("another key " * 4))
    assert [loc for loc, _ in problems] == [("connectors", 0, "secret"), ("connectors", 1, "password")]
    assert "secret_key" in problems[0][1]


def test_the_same_secret_keeps_its_sealed_form_and_stored_keeps_the_stored_one():
    vault = Vault(KEY)
    first = seal(doc("s" * 20), {}, vault)
    assert seal(doc("s" * 20), first, vault) == first  # no new revision for an unchanged secret
    assert seal(doc(STORED), first, vault) == first
    assert seal(doc("t" * 20), first, vault)["connectors"][0]["secret"] != first["connectors"][0]["secret"]
    renamed = seal(doc(STORED, name="other"), first, vault)  # nothing stored under that name
    assert reveal(renamed, vault)[1][0][0] == ("connectors", 0, "secret")


def test_a_reference_is_kept_and_read_from_the_environment():
    vault = Vault(KEY)
    stored = seal(doc("${GEN_SECRET}"), {}, vault)
    assert stored["connectors"][0]["secret"] == "${GEN_SECRET}"
    assert reveal(stored, vault, {"GEN_SECRET": "from-env"})[0]["connectors"][0]["secret"] == "from-env"
    [(loc, message)] = [p for p in reveal(stored, vault, {})[1] if p[0][1] == 0]
    assert "GEN_SECRET is not set" in message


def test_display_shows_no_secret_and_says_which_one_changes():
    vault = Vault(KEY)
    first = seal(doc("s" * 20), {}, vault)
    second = seal(doc("t" * 20), first, vault)
    assert display(first)["connectors"][0]["secret"] == STORED
    assert [c.get("secret", c.get("password")) for c in display(second, first)["connectors"]] == [CHANGED, STORED]
    assert display(seal(doc("${GEN_SECRET}"), {}, vault))["connectors"][0]["secret"] == "${GEN_SECRET}"
