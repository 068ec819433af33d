"""Scenario files through the admin API, on both databases: an admin saves a file and gives it to a
number, and the next customer text runs it, with no restart; a broken file is refused with its lines
named as `didchat scenario validate` names them, and the running version stays; a file a number runs
is not deleted."""
from __future__ import annotations

from pathlib import Path

from tests.chat.test_admin_api import api_as
from tests.chat.test_scenarios_live import bodies, write
from tests.conftest import ALICE, CUSTOMER

THANKS = 'name: thanks\non:\n  conversation_started:\n    - reply: "Thanks for texting!"\n'
BROKEN = (Path(__file__).resolve().parents[2] / "scenarios" / "examples" / "broken" / "broken.yaml").read_text()


async def test_a_saved_file_given_to_a_number_runs_for_the_next_text(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "other", "name: other\non: {}\n"))
    api = await api_as(server, "ada")
    status, saved, _ = await api("PUT", "/api/v1/scenarios/thanks", {"text": THANKS})
    assert status == 200 and saved["created"] is True and saved["problems"] == [] and saved["numbers"] == []
    assert (await api("PATCH", f"/api/v1/numbers/{ALICE}", {"scenario": "thanks"}))[0] == 200
    await server.simulate_sms(CUSTOMER, ALICE, "hi")
    assert await bodies(server, 1) == ["Thanks for texting!"]
    status, listed, _ = await api("GET", "/api/v1/scenarios")
    assert [(s["name"], s["numbers"]) for s in listed["items"]] == [("other", []), ("thanks", [ALICE])]
    status, one, _ = await api("GET", "/api/v1/scenarios/thanks")
    assert one["text"] == THANKS


async def test_a_broken_file_is_refused_with_its_lines_and_the_running_one_stays(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "thanks", THANKS), alice=", scenario: thanks")
    api = await api_as(server, "ada")
    status, checked, _ = await api("POST", "/api/v1/scenarios/validate?name=thanks", {"text": BROKEN})
    assert status == 200 and checked["ok"] is False
    [problem] = checked["problems"]  # as `didchat scenario validate scenarios/examples/broken/broken.yaml` says it
    assert problem["line"] == 6 and problem["field"] == "on.message_received[1].timeout"
    assert problem["detail"].startswith("required for a wait")
    status, answer, _ = await api("PUT", "/api/v1/scenarios/thanks", {"text": BROKEN})
    assert status == 422 and "thanks.yaml was not saved: line 6: on.message_received[1].timeout" in answer["detail"]
    assert [(e["field"], e["line"]) for e in answer["errors"]] == [("text", 6)]
    assert (tmp_path / "scenarios" / "thanks.yaml").read_text() == THANKS
    await server.simulate_sms(CUSTOMER, ALICE, "hi")
    assert await bodies(server, 1) == ["Thanks for texting!"]
    status, checked, _ = await api("POST", "/api/v1/scenarios/validate", {"text": THANKS})
    assert checked == {"ok": True, "problems": []}


async def test_a_file_a_number_runs_is_not_deleted_and_names_are_only_names(make_server, tmp_path):
    server = await make_server(extra=write(tmp_path, "thanks", THANKS), alice=", scenario: thanks")
    api = await api_as(server, "ada")
    status, answer, _ = await api("DELETE", "/api/v1/scenarios/thanks")
    assert status == 409 and ALICE in answer["detail"]
    assert (await api("PATCH", f"/api/v1/numbers/{ALICE}", {"scenario": "default"}))[0] == 200
    assert (await api("DELETE", "/api/v1/scenarios/thanks"))[0] == 204
    assert not (tmp_path / "scenarios" / "thanks.yaml").exists()
    for name in ("..%2Fdidchat", "default", "Thanks"):
        assert (await api("PUT", f"/api/v1/scenarios/{name}", {"text": THANKS}))[0] == 404
    agent = await api_as(server, "alice")
    assert (await agent("GET", "/api/v1/scenarios"))[0] == 403
