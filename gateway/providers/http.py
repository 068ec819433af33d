"""The HTTP client under the REST senders and media fetches.

Rules:
- One aiohttp ClientSession per sender, created on first use (inside the running loop); aiohttp is
  imported then, not with this module (`didchat simulate sms` must not wait for it).
- Transport failures and timeouts become temporary SendErrors here, once; the provider modules
  only read answers (`Answer`), including what a 429 or 503 says of when to come back.
- Redirects are not followed: a POST that moved is a configuration error.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.messages import SendError
from gateway.providers.base import header

MAX_RETRY_AFTER = 3600.0  # a Retry-After longer than this is read as this


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer: status, the JSON payload (None when the body is not JSON), headers."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""  # as it came (a GET of media, or an answer that is not JSON)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def temporary(self) -> bool:
        """Whether a failed answer is worth retrying."""
        return self.status == 429 or self.status >= 500

    @property
    def retry_after(self) -> float | None:
        """Seconds the provider asked us to wait (Retry-After as seconds or as an HTTP date), or None."""
        return retry_after(header(self.headers, "Retry-After"))

    def field(self, name: str) -> Any:
        """Return a field of a JSON object payload, or None."""
        return self.payload.get(name) if isinstance(self.payload, dict) else None

    def error(self, message: str, *, code: Any = None, opt_out: bool = False,
              temporary: bool | None = None) -> SendError:
        """A SendError for this failed answer: temporary as its status says (unless told), with its Retry-After."""
        return SendError(message, temporary=self.temporary if temporary is None else temporary,
                         code=None if code is None or code == "" else str(code), opt_out=opt_out,
                         retry_after=self.retry_after)


def retry_after(value: str | None) -> float | None:
    """Read a Retry-After header: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.replace(".", "", 1).isdigit() else \
            (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HttpClient:
    """Talks to one provider with a lazily created session and fixed headers (auth)."""

    def __init__(self, timeout: float, headers: Mapping[str, str] | None = None):
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._session: Any = None

    async def post(self, url: str, **kwargs: Any) -> Answer:
        """POST and read the answer; transport failures raise a temporary SendError."""
        return await self.request("POST", url, **kwargs)

    async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        """Send one request and read the answer; transport failures raise a temporary SendError."""
        import aiohttp

        try:
            async with self._open().request(method, url, allow_redirects=False, **kwargs) as response:
                body = await response.read()
                return Answer(response.status, _json(body), dict(response.headers), body)
        except TimeoutError:
            raise SendError(f"no answer from {url} within {self._timeout}s", temporary=True) from None
        except aiohttp.ClientError as err:
            raise SendError(f"cannot reach {url}: {err}", temporary=True) from None

    async def close(self) -> None:
        """Close the session if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> Any:
        """Return the session, creating it on first use."""
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout),
                                                  headers=self._headers)
        return self._session


def _json(body: bytes) -> Any:
    """Decode a JSON body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


class MediaError(Exception):
    """Inbound media that could not be fetched: `status` is what to answer the agent (404, 413, 502, 504)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


async def fetch_media(url: str, headers: Mapping[str, str], max_bytes: int, timeout: float = 20.0) -> tuple[str, bytes]:
    """GET a provider's media with its credentials: (content type, bytes), at most `max_bytes`. Redirects are
    followed (Twilio's go to storage), and aiohttp drops the credentials when one leads to another host."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=dict(headers), max_redirects=5) as response:
                if response.status in (404, 410):
                    raise MediaError(404, f"the provider no longer has this media (HTTP {response.status})")
                if response.status >= 300:
                    raise MediaError(502, f"the provider answered HTTP {response.status} for this media")
                if (response.content_length or 0) > max_bytes:
                    raise MediaError(413, f"the media is larger than {max_bytes} bytes")
                body = await response.content.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise MediaError(413, f"the media is larger than {max_bytes} bytes")
                return response.content_type or "application/octet-stream", body
    except TimeoutError:
        raise MediaError(504, f"the provider did not send the media within {timeout:g} s") from None
    except aiohttp.ClientError as err:
        raise MediaError(502, f"cannot fetch the media from the provider ({type(err).__name__})") from None
