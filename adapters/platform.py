"""The crowdfunding platform over HTTP (docs/platform.md): signed pushes and the share register.

Every request carries `Heliod-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, "<t>.<raw body>"), so the platform can check both who sent it and
when (a replayed old request has an old `t`). A push also carries `Idempotency-Key`.

Answers are classified here and nowhere else: 2xx and 409 acknowledge; timeouts,
connection errors, 429, 5xx (and redirects, which a person must fix in `push_url` but
which must not park events) are retryable; any other 4xx is a rejection.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from heliod.adapters.errors import PermanentError, RetryableError

SIGNATURE_HEADER = "Heliod-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "heliod"
MAX_REGISTER_BYTES = 32 * 1024 * 1024  # a register of ~300,000 backers; more is not sane
_ERROR_TEXT = 200  # characters of an error answer kept for `sync status`


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """Where to push and pull, and how long to wait for an answer."""

    push_url: str
    secret: str  # the shared HMAC key (platform.secret_file or $HELIOD_PLATFORM_SECRET)
    backers_url: str = ""
    timeout_s: float = 10.0


class Unavailable(RetryableError):
    """The platform did not take the request this time; `status` is None without an answer."""

    def __init__(
        self, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class Refused(PermanentError):
    """The platform answered with a 4xx other than 409 and 429: the event is parked."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def signature(secret: str, body: bytes, t: int) -> str:
    """The Heliod-Signature header value for `body` sent at unix second `t`."""
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


def _excerpt(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.HTTPError, UnicodeDecodeError):
        return ""
    text = " ".join(text.split())
    return text[:_ERROR_TEXT] + ("…" if len(text) > _ERROR_TEXT else "")


class PlatformClient:
    """Keep-alive HTTP connections to the platform; give each worker thread its own."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        clock_s: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._clock_s = clock_s
        self._http = httpx.Client(
            timeout=settings.timeout_s,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _signed(self, body: bytes) -> dict[str, str]:
        return {SIGNATURE_HEADER: signature(self.settings.secret, body, int(self._clock_s()))}

    def push(self, event_id: str, body: bytes) -> int:
        """POST one event; returns the acknowledging status, raises Unavailable or Refused."""
        headers = {
            **self._signed(body),
            IDEMPOTENCY_HEADER: event_id,
            "Content-Type": "application/json",
        }
        try:
            response = self._http.post(self.settings.push_url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"timeout after {self.settings.timeout_s:g} s ({exc!r})") from None
        except httpx.HTTPError as exc:
            # Connection refused or reset, a response cut short: the platform may or may
            # not have the event, and the Idempotency-Key makes resending it harmless.
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            return status
        message = f"HTTP {status}: {_excerpt(response)}".rstrip(": ")
        if status == 429 or status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), self._clock_s())
            raise Unavailable(message, status, wait)
        if 400 <= status < 500:
            raise Refused(message, status)
        location = response.headers.get("Location", "")
        raise Unavailable(f"{message} (redirect to {location!r}: fix push_url)", status)

    def fetch_backers(self, plant: str) -> bytes:
        """GET the plant's share register from backers_url, signed over an empty body."""
        url = self.settings.backers_url.replace("{plant}", plant)
        try:
            with self._http.stream("GET", url, headers=self._signed(b"")) as response:
                status = response.status_code
                if status != 200:
                    response.read()
                    message = f"HTTP {status}: {_excerpt(response)}".rstrip(": ")
                    if status == 429 or status >= 500:
                        raise Unavailable(message, status)
                    raise Refused(message, status)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_REGISTER_BYTES:
                        raise Refused(f"answer larger than {MAX_REGISTER_BYTES} bytes", status)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"timeout after {self.settings.timeout_s:g} s ({exc!r})") from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
