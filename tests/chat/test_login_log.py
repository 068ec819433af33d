"""Failed logins are logged (issue 8, point 2): `login.failed` with the user name, the remote
address and the reason; never the password, whatever the reason."""
from __future__ import annotations

import json

from structlog.testing import capture_logs

from chat.agents.login import LOGIN
from tests.chat.test_login_throttle import attempt
from tests.conftest import PASSWORD

GUESS = "hunter2-guess-7f3a"


async def test_failed_logins_are_logged_with_user_address_and_reason_never_the_password(make_server):
    server = await make_server(extra="login: {user_failures: 2, delay_seconds: 30}\n")
    with capture_logs() as logs:
        assert (await attempt(server, "mallory", GUESS, "127.0.0.5"))[0] == 401
        assert (await attempt(server, "alice", GUESS))[0] == 401
        assert (await attempt(server, "alice", GUESS))[0] == 401
        assert (await attempt(server, "alice", GUESS))[0] == 429
        assert (await attempt(server, "alice", PASSWORD))[0] == 429
    failed = [(e["user"], e["address"], e["reason"]) for e in logs if e["event"] == "login.failed"]
    assert failed == [
        ("mallory", "127.0.0.5", "unknown user"),
        ("alice", "127.0.0.1", "wrong password"),
        ("alice", "127.0.0.1", "wrong password"),
        ("alice", "127.0.0.1", "throttled"),
        ("alice", "127.0.0.1", "throttled"),
    ]
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "login.failed")
    text = json.dumps(logs, default=repr)
    assert GUESS not in text and PASSWORD not in text
    counted = server.app[LOGIN].guard.failures  # what /metrics reads
    assert counted == {"unknown user": 1, "wrong password": 2, "throttled": 2}
