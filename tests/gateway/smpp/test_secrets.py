"""The bind password never leaves the SMPP client: not in a repr, an error, or a log line."""
from __future__ import annotations

import pytest

from gateway.smpp import SmppSettings
from gateway.smpp.pdu import ESME_RINVPASWD, PduError, encode, request
from tests.gateway.smpp.conftest import PASSWORD, fast_settings, until


def test_settings_repr_hides_the_password():
    settings = SmppSettings(host="h", port=1, system_id="didchat", password="Zq9#xw!")
    assert "Zq9#xw!" not in repr(settings) and "didchat" in repr(settings)


def test_a_password_that_cannot_be_encoded_is_not_echoed():
    with pytest.raises(PduError) as caught:
        encode(request("bind_transceiver", 1, system_id="didchat", password="pässwö"))
    assert "pässwö" not in str(caught.value) and "password" in str(caught.value)
    with pytest.raises(ValueError) as caught:
        SmppSettings(host="h", port=1, system_id="didchat", password="pässwö")
    assert "pässwö" not in str(caught.value)


async def test_no_log_line_of_a_bind_and_a_refused_bind_shows_the_password(smsc, make_client, capfd):
    client = await make_client(fast_settings(smsc.port))
    smsc.reject_bind(ESME_RINVPASWD)
    smsc.drop_links()
    await until(lambda: client.last_error == "ESME_RINVPASWD")
    out, err = capfd.readouterr()
    assert "smpp.bind_failed" in out + err and PASSWORD not in out + err
