"""The HTTP client under the REST senders.

Rules:
- One aiohttp ClientSession per sender, created on first use (inside the running loop).
- Transport failures and timeouts become temporary SendErrors here, once; the provider modules
  only read answers.
- Redirects are not followed: a POST that moved is a configuration error.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.messages import SendError


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer: status and the JSON payload (None when the body is not JSON)."""

    status: int
    payload: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def temporary(self) -> bool:
        """Whether a failed answer is worth retrying."""
        return self.status == 429 or self.status >= 500

    def field(self, name: str) -> Any:
        """Return a field of a JSON object payload, or None."""
        return self.payload.get(name) if isinstance(self.payload, dict) else None


class HttpClient:
    """POSTs to one provider with a lazily created session and fixed headers (auth)."""

    def __init__(self, timeout: float, headers: Mapping[str, str] | None = None):
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, **kwargs: Any) -> Answer:
        """POST and read the answer; transport failures raise a temporary SendError."""
        try:
            async with self._open().post(url, allow_redirects=False, **kwargs) as response:
                return Answer(response.status, _json(await response.read()))
        except TimeoutError:
            raise SendError(f"no answer from {url} within {self._timeout.total}s", temporary=True) from None
        except aiohttp.ClientError as err:
            raise SendError(f"cannot reach {url}: {err}", temporary=True) from None

    async def close(self) -> None:
        """Close the session if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        """Return the session, creating it on first use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session


def _json(body: bytes) -> Any:
    """Decode a JSON body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
