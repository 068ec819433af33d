"""Login throttling: wrong passwords counted per user name and per remote address, and the
password-hashing work bounded so that a login flood cannot starve ingest.

Rules:
- After `user_failures` wrong passwords for one name, or `address_failures` from one address,
  within `window_seconds`, attempts are refused for a delay that starts at `delay_seconds` and
  doubles with each further failure, up to `max_delay_seconds`. A refused attempt costs no hash
  and is not a failure; the right password is refused too, so a refusal says nothing about it.
- An attempt being checked counts against both limits while it runs: parallel guesses cannot
  overshoot a limit.
- The right password clears its user's count, never its address's (an attacker with an account
  of their own would otherwise clear the address between guesses).
- Unknown names are counted like known ones, and cost the same hash: neither a 429 nor the
  time taken tells who exists.
- Hashes run on `hash_concurrency` threads of lower priority (argon2 itself may spread one hash
  over its `parallelism` lanes, threads that inherit that priority); at most `hash_queue` more
  attempts wait for one, the rest are refused at once ("busy"), before any query.
- Time is passed in (monotonic seconds); nothing here sleeps or does I/O but the hashing threads.
- Per process, in memory, bounded in size: a restart forgets, and each node of a cluster counts
  on its own (a later issue moves this state into Redis). The address is the TCP peer: behind a
  reverse proxy every attempt comes from the proxy's address.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chat.config import LoginConfig

MAX_KEYS = 100_000  # names or addresses tracked per kind; the oldest are forgotten first
HASH_NICE = 10  # the hashing threads' niceness: when both want a core, ingest's thread gets it
# (bench/login_flood.py, 50 addresses, SQLite, a loaded machine: the flood kept 75 % of the ingest
# rate at niceness 0, 93 % at 10)


class Throttled(Exception):
    """Too many failures: try again after `retry_after` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class Busy(Exception):
    """Too many logins already wait for a password hash."""


@dataclass(frozen=True)
class Limits:
    failures: int
    window: float
    delay: float
    max_delay: float

    def delay_after(self, failures: int) -> float:
        """The wait after `failures` failures in the window (0 below the limit)."""
        excess = failures - self.failures
        return 0.0 if excess < 0 else min(self.max_delay, self.delay * 2.0 ** min(excess, 64))


@dataclass(slots=True)
class Tally:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    blocked_until: float = 0.0


class Tallies:
    """Failures per key (a user name or an address) under one set of limits."""

    def __init__(self, limits: Limits, max_keys: int = MAX_KEYS):
        self.limits, self.max_keys = limits, max_keys
        self._tallies: OrderedDict[str, Tally] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tallies)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds before `key` may try again; 0 if it may try now."""
        tally = self._tallies.get(key)
        if tally is None:
            return 0.0
        self._expire(tally, now)
        if now < tally.blocked_until:
            return tally.blocked_until - now
        if tally.in_flight and len(tally.failures) + tally.in_flight >= self.limits.failures:
            return self.limits.delay  # the attempts in flight may use up what is left
        return 0.0

    def begin(self, key: str, now: float) -> None:
        self._touch(key, now).in_flight += 1

    def end(self, key: str, now: float, failed: bool) -> None:
        tally = self._touch(key, now)
        tally.in_flight = max(0, tally.in_flight - 1)
        if failed:
            tally.failures.append(now)
            self._expire(tally, now)
            tally.blocked_until = max(tally.blocked_until, now + self.limits.delay_after(len(tally.failures)))

    def clear(self, key: str) -> None:
        tally = self._tallies.get(key)
        if tally is not None:
            tally.failures.clear()
            tally.blocked_until = 0.0

    def _touch(self, key: str, now: float) -> Tally:
        tally = self._tallies.pop(key, None) or Tally()
        self._forget_old(now)
        self._tallies[key] = tally  # most recently used last
        return tally

    def _expire(self, tally: Tally, now: float) -> None:
        while tally.failures and tally.failures[0] <= now - self.limits.window:
            tally.failures.popleft()

    def _forget_old(self, now: float) -> None:
        """Drop idle tallies from the old end (a few per call) and any beyond `max_keys`."""
        for key, tally in list(itertools.islice(self._tallies.items(), 2)):
            self._expire(tally, now)
            if tally.in_flight or tally.failures or now < tally.blocked_until:
                break
            del self._tallies[key]
        while len(self._tallies) >= self.max_keys:  # room for the one about to be added
            self._tallies.popitem(last=False)


class LoginGuard:
    """Admits login attempts, or refuses them, from their user's and their address's failures."""

    def __init__(self, config: LoginConfig):
        def limits(failures: int) -> Limits:
            return Limits(failures, config.window_seconds, config.delay_seconds, config.max_delay_seconds)

        self.users = Tallies(limits(config.user_failures))
        self.addresses = Tallies(limits(config.address_failures))
        self.failures: Counter[str] = Counter()  # failed logins by reason, for /metrics

    def admit(self, user: str, address: str, now: float) -> None:
        """Let an attempt be checked (it counts as in flight until `settle`), or raise Throttled."""
        wait = max(self.users.retry_after(user, now), self.addresses.retry_after(address, now))
        if wait > 0:
            raise Throttled(wait)
        self.users.begin(user, now)
        self.addresses.begin(address, now)

    def settle(self, user: str, address: str, now: float, outcome: str) -> None:
        """End an admitted attempt: "ok", "failed", or "unchecked" (it never reached a hash)."""
        failed = outcome == "failed"
        self.users.end(user, now, failed)
        self.addresses.end(address, now, failed)
        if outcome == "ok":
            self.users.clear(user)

    def count(self, reason: str) -> None:
        self.failures[reason] += 1


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop's thread when both want it (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the thread bound still holds
        pass


class Hashing:
    """argon2 verification off the event loop: `concurrency` threads, at most `queue` waiting."""

    def __init__(self, hasher: PasswordHasher, concurrency: int, queue: int):
        self.hasher = hasher
        self.verified = 0  # verifications started, for tests and /metrics
        self._slots = threading.BoundedSemaphore(concurrency + queue)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="password-hash", initializer=_lower_priority)
        self._dummy: str | None = None

    def prepare(self) -> None:
        """Make the unknown-name hash now, on a hashing thread (else the first unknown name costs twice)."""
        self._pool.submit(self._dummy_hash)

    @contextlib.contextmanager
    def slot(self) -> Iterator[Callable[[str | None, str], Awaitable[bool]]]:
        """A place among the logins hashing now or next, or Busy; yields the one `verify` to call.

        Taken before the caller reads the stored hash: a refused login costs no query either.
        """
        if not self._slots.acquire(blocking=False):
            raise Busy()
        submitted = False

        async def verify(stored: str | None, password: str) -> bool:
            nonlocal submitted
            job = asyncio.get_running_loop().run_in_executor(self._pool, self._check, stored, password)
            submitted = True  # from here the hashing thread gives the place back
            self.verified += 1
            return await job

        try:
            yield verify
        finally:
            if not submitted:
                self._slots.release()

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored` (None: an unknown user, at the same cost); or Busy."""
        with self.slot() as verify:
            return await verify(stored, password)

    def _check(self, stored: str | None, password: str) -> bool:
        secret = password.encode("utf-8", "surrogatepass")  # JSON can carry a lone surrogate: same cost, no error
        try:
            if stored is None:
                self.hasher.verify(self._dummy_hash(), secret)  # a random secret's hash: never matches
                return False
            return self.hasher.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._slots.release()  # in this thread: the slot is held until the hash is really done

    def _dummy_hash(self) -> str:
        """The hash an unknown name is checked against, with the hasher's own parameters."""
        self._dummy = self._dummy or self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
