"""Login throttling (issue 8, point 9): wrong passwords per user and per address end in 429 with
Retry-After and a growing delay, a refused attempt costs no hash, and password hashing is
bounded so that a login flood gets 503 instead of piling up on the CPU."""
from __future__ import annotations

import asyncio
import threading
import time
from ipaddress import ip_network

import aiohttp
import pytest
from argon2 import PasswordHasher

from chat.agents.login import LOGIN, client_address
from chat.agents.throttle import Busy, Hashing, Limits, LoginGuard, Tallies, Throttled
from chat.config import LoginConfig
from tests.conftest import ALICE, CUSTOMER, PASSWORD

FAST_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def attempt(server, name: str, password: str, address: str = "127.0.0.1",
                  forwarded: str | None = None) -> tuple[int, str | None, dict]:
    """POST /api/login from `address` (any 127.x.y.z is this machine); (status, Retry-After, body)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    async with aiohttp.ClientSession(connector=connector) as http:
        body = {"username": name, "password": password}
        async with http.post(f"{server.url}/api/login", json=body, headers=headers) as r:
            return r.status, r.headers.get("Retry-After"), await r.json()


def hashes(server) -> int:
    return server.app[LOGIN].hashing.verified


async def test_sixth_wrong_password_is_429_even_for_the_right_one_then_it_works(make_server):
    server = await make_server(extra="login: {user_failures: 5, delay_seconds: 1.5}\n")
    for i in range(5):  # each from another address: the count is the user's
        status, retry, _ = await attempt(server, "alice", "wrong", f"127.0.0.{10 + i}")
        assert status == 401 and retry is None
    before = hashes(server)
    status, retry, body = await attempt(server, "alice", "wrong", "127.0.0.20")
    assert status == 429 and retry in ("1", "2") and "try again" in body["error"]
    status, retry, _ = await attempt(server, "alice", PASSWORD, "127.0.0.21")
    assert status == 429 and retry is not None  # no oracle: the right password is refused too
    assert hashes(server) == before  # a throttled attempt costs no hash
    assert (await attempt(server, "bob", PASSWORD, "127.0.0.20"))[0] == 200  # only alice is held
    answers: list[int] = []

    async def logged_in() -> bool:
        answers.append((await attempt(server, "alice", PASSWORD))[0])
        return answers[-1] == 200

    async with asyncio.timeout(5):
        while not await logged_in():
            await asyncio.sleep(0.1)
    assert set(answers[:-1]) <= {429}
    for _ in range(5):  # the success cleared alice's count: five more wrong passwords are 401 again
        assert (await attempt(server, "alice", "wrong", "127.0.0.30"))[0] == 401


async def test_one_address_is_throttled_across_many_user_names(make_server):
    server = await make_server(extra="login: {address_failures: 4, delay_seconds: 30}\n")
    for i in range(4):
        assert (await attempt(server, f"guess{i}", "wrong"))[0] == 401
    status, retry, _ = await attempt(server, "guess4", "wrong")
    assert status == 429 and 29 <= int(retry) <= 30
    assert (await attempt(server, "alice", PASSWORD))[0] == 429  # that address is held, whoever it names
    assert (await attempt(server, "alice", PASSWORD, "127.0.0.2"))[0] == 200  # another address is not


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(make_server):
    server = await make_server(extra="login: {address_failures: 2, delay_seconds: 30}\n")
    for i in range(2):  # a client cannot dodge its address's limit by naming another address
        assert (await attempt(server, f"guess{i}", "wrong", forwarded=f"203.0.113.{i}"))[0] == 401
    assert (await attempt(server, "guess2", "wrong", forwarded="203.0.113.2"))[0] == 429


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(make_server):
    server = await make_server(
        extra='login: {address_failures: 2, delay_seconds: 30, trusted_proxies: ["127.0.0.0/8"]}\n')
    for i in range(2):
        assert (await attempt(server, f"guess{i}", "wrong", forwarded="203.0.113.5"))[0] == 401
    # what the client wrote to the left of what the proxy appended is not believed
    assert (await attempt(server, "guess2", "wrong", forwarded="198.51.100.1, 203.0.113.5"))[0] == 429
    assert (await attempt(server, "alice", PASSWORD, forwarded="203.0.113.6"))[0] == 200  # another client


def test_client_address_walks_from_the_right_past_trusted_proxies():
    trusted = (ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32"))
    assert client_address("192.0.2.1", ["198.51.100.7"], trusted) == "192.0.2.1"  # the peer is no proxy
    assert client_address("127.0.0.1", ["198.51.100.7, 10.1.2.3"], trusted) == "198.51.100.7"
    assert client_address("127.0.0.1", ["evil, 198.51.100.7"], trusted) == "198.51.100.7"
    assert client_address("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", ["x" * 500], trusted) == "x" * 64
    assert client_address(None, [], ()) == "unknown"


async def test_malformed_logins_are_answered_400_or_401_never_500(didchat_server):
    url = f"{didchat_server.url}/api/login"
    bodies = {b"[]": 400, b"null": 400, b"{": 400, b'{"username": 5, "password": "x"}': 400,
              b'{"username": "a\\u0000b", "password": "x"}': 400, b'{"username": "\\ud800", "password": "x"}': 400,
              b'{"username": "alice"}': 400, b'{"username": "alice", "password": "\\ud800"}': 401,
              b'{"username": "alice", "password": "a\\u0000b"}': 401}
    async with aiohttp.ClientSession() as http:
        for body, expected in bodies.items():
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                assert r.status == expected, (body, r.status, await r.text())


async def test_unknown_user_costs_a_hash_and_gets_the_wrong_password_answer(didchat_server):
    before = hashes(didchat_server)
    unknown = await attempt(didchat_server, "mallory", "wrong")
    wrong = await attempt(didchat_server, "alice", "wrong")
    assert unknown == wrong and unknown[0] == 401
    assert hashes(didchat_server) == before + 2


class CountingHasher:
    """The real hasher, recording how many verifications run at once."""

    def __init__(self, real: PasswordHasher):
        self.real, self.running, self.most = real, 0, 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.real.verify(stored, password)
        finally:
            with self.lock:
                self.running -= 1


async def test_fifty_parallel_wrong_logins_are_bounded_and_ingest_goes_on(make_server):
    server = await make_server(extra="login: {hash_concurrency: 1, hash_queue: 2}\n")
    counting = CountingHasher(server.app[LOGIN].hashing.hasher)
    server.app[LOGIN].hashing.hasher = counting
    alice = await server.connect("alice")
    before = hashes(server)
    flood = asyncio.gather(*(attempt(server, f"user{i}", "wrong", f"127.0.1.{i + 1}") for i in range(50)))
    started = time.monotonic()
    status, _ = await server.simulate_sms(CUSTOMER, ALICE, "during the flood")
    assert status == 200 and time.monotonic() - started < 5.0  # not queued behind 50 hashes
    await alice.wait_messages(1)
    async with asyncio.timeout(20):
        answers = await flood
    statuses = [a[0] for a in answers]
    assert set(statuses) <= {401, 503} and statuses.count(503) > 0
    assert all(a[1] == "1" for a in answers if a[0] == 503)
    assert counting.most == 1  # one hash at a time, whatever the flood
    assert hashes(server) - before == statuses.count(401) < 50


# ---------------------------------------------------------------- the pure parts

def guard(**options) -> LoginGuard:
    return LoginGuard(LoginConfig(**options))


def fail(g: LoginGuard, user: str, address: str, now: float) -> None:
    g.admit(user, address, now)
    g.settle(user, address, now, "failed")


def test_the_delay_doubles_up_to_the_max_and_the_window_forgets():
    g = guard(user_failures=3, delay_seconds=1, max_delay_seconds=4, window_seconds=100)
    now = 0.0
    for _ in range(2):
        fail(g, "alice", "a", now)
    waits = []
    for _ in range(5):
        fail(g, "alice", "a", now)
        with pytest.raises(Throttled) as refused:
            g.admit("alice", "a", now)
        waits.append(refused.value.retry_after)
        now += refused.value.retry_after
    assert waits == [1, 2, 4, 4, 4]
    g.admit("alice", "a", now + 100)  # the window passed: the slate is clean
    g.settle("alice", "a", now + 100, "failed")
    g.admit("alice", "a", now + 100)


def test_attempts_in_flight_count_against_the_limit():
    g = guard(user_failures=3)
    for _ in range(3):
        g.admit("alice", "a", 0)
    with pytest.raises(Throttled):
        g.admit("alice", "b", 0)
    g.settle("alice", "a", 0, "unchecked")  # never reached a hash: not a failure
    g.admit("alice", "b", 0)


def test_success_clears_the_user_but_not_the_address():
    g = guard(user_failures=2, address_failures=3)
    fail(g, "alice", "a", 0)
    fail(g, "bob", "a", 0)
    g.admit("alice", "a", 0)
    g.settle("alice", "a", 0, "ok")
    assert g.users.retry_after("alice", 0) == 0
    fail(g, "carol", "a", 0)
    with pytest.raises(Throttled):
        g.admit("alice", "a", 0)


def test_tallies_are_bounded_in_number():
    tallies = Tallies(Limits(failures=5, window=900, delay=1, max_delay=300), max_keys=100)
    for i in range(1000):
        tallies.begin(f"user{i}", 0)
        tallies.end(f"user{i}", 0, failed=True)
    assert len(tallies) == 100
    for i in range(1000):  # idle ones go as the window passes
        tallies.begin(f"later{i}", 1000)
        tallies.end(f"later{i}", 1000, failed=False)
    assert len(tallies) < 10


class GatedHasher(CountingHasher):
    """Verifications wait until the test opens the gate."""

    def __init__(self, real: PasswordHasher):
        super().__init__(real)
        self.gate = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        assert self.gate.wait(10)
        return super().verify(stored, password)


async def test_hashing_runs_one_at_a_time_and_refuses_beyond_its_queue():
    gated = GatedHasher(FAST_HASH)
    hashing = Hashing(gated, concurrency=1, queue=2)
    stored = FAST_HASH.hash("secret")
    try:
        tasks = [asyncio.ensure_future(hashing.verify(stored, "secret")) for _ in range(10)]
        refused, waiting = await asyncio.wait(tasks, timeout=2)
        assert len(refused) == 7 and all(isinstance(t.exception(), Busy) for t in refused)
        gated.gate.set()
        assert await asyncio.gather(*waiting) == [True] * 3
        assert gated.most == 1
        assert await hashing.verify(None, "secret") is False  # an unknown name: a real verify, never a match
        assert await hashing.verify("not a hash", "secret") is False
    finally:
        gated.gate.set()
        hashing.close()
