"""A connector's SMPP options reach the client, and its password stays hidden on the way."""
from __future__ import annotations

from chat.config import SmppConnector
from chat.connectors.smpp import settings


def connector(**options) -> SmppConnector:
    return SmppConnector(type="smpp", name="smsc", host="127.0.0.1", port=2775, system_id="didchat",
                         password="Pw7!xq", **options)


def test_throttle_max_pause_reaches_the_submit_queue_settings():
    assert settings(connector()).throttle_max_pause == 1.5
    assert settings(connector(throttle_pause=0.5, throttle_max_pause=2)).throttle_max_pause == 2


def test_the_password_is_passed_on_but_never_shown():
    made = settings(connector())
    assert made.password == "Pw7!xq" and "Pw7!xq" not in repr(made) and "Pw7!xq" not in repr(connector())
