"""The crowdfunding platform over HTTP (docs/platform.md): signed pushes and the share register.

Every request carries `Heliod-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, "<t>.<raw body>"), so the platform can check both who sent it and
when (a replayed old request has an old `t`). A push also carries `Idempotency-Key`.
The share register answer must carry the same header over its own raw body, with a `t`
within 300 s of our clock, or it is refused whole (`InvalidAnswer`): it decides who gets
the tokens, and a valid signature is what says the platform wrote it.

Answers are classified here and nowhere else: 2xx and 409 acknowledge; timeouts,
connection errors, 429, 5xx (and redirects, which a person must fix in `push_url` but
which must not park events) are retryable; any other 4xx is a rejection.

Deadlines: httpx's `timeout` bounds each read, so a server sending one byte every few
seconds (headers or body) would hold a request forever. Each request therefore runs as
a task on a private asyncio loop under `asyncio.timeout(timeout_s)`, which bounds it
whole: connecting, sending, every byte of the answer (docs/platform.md, "Deadlines").
`close()`, from any thread, cancels the request in flight at once, so a stop never
waits on a slow platform.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, TypeVar

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.tls import shared_context

if TYPE_CHECKING:
    import httpx  # at the first request: a daemon without a platform never imports it

SIGNATURE_HEADER = "Heliod-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "heliod"
MAX_REGISTER_BYTES = 32 * 1024 * 1024  # a register of ~300,000 backers; more is not sane
ANSWER_TOLERANCE_S = 300  # |our clock − t| allowed on a signed answer (docs/platform.md)
_ERROR_TEXT = 200  # characters of an error answer kept for `sync status`
_V1 = re.compile(r"[0-9a-f]{64}")
_T = re.compile(r"[0-9]{1,12}")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """Where to push and pull, and the deadline of each request, whole."""

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


class Stopping(Unavailable):
    """The request was abandoned (or never sent) because the client was closed: heliod stops."""


class Refused(PermanentError):
    """The platform answered with a 4xx other than 409 and 429: the event is parked."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InvalidAnswer(PermanentError):
    """A 200 answer heliod will not take (unsigned, badly signed, stale, too large)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problems = [problem]


def _mac(secret: str, body: bytes, t: int) -> str:
    """Lowercase hex HMAC-SHA256(secret, "<t>.<body>"): requests and answers alike."""
    message = f"{t}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, t: int) -> str:
    """The Heliod-Signature header value for `body` sent at unix second `t`."""
    return f"t={t},v1={_mac(secret, body, t)}"


def check_signature(
    secret: str,
    header: str | None,
    body: bytes,
    now_s: float,
    tolerance_s: int = ANSWER_TOLERANCE_S,
) -> None:
    """Raise InvalidAnswer unless `header` signs `body` with `secret` at a t near `now_s`."""
    if not header:
        raise InvalidAnswer(f"no {SIGNATURE_HEADER} header")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    ts, v1s = fields.get("t", []), fields.get("v1", [])
    if len(ts) != 1 or len(v1s) != 1 or not _T.fullmatch(ts[0]) or not _V1.fullmatch(v1s[0]):
        raise InvalidAnswer(f"{SIGNATURE_HEADER} is not t=<unix seconds>,v1=<64 hex digits>")
    t = int(ts[0])
    if abs(now_s - t) > tolerance_s:
        raise InvalidAnswer(
            f"{SIGNATURE_HEADER} t={t} is {abs(now_s - t):.0f} s from the gateway's clock "
            f"(at most {tolerance_s} s)"
        )
    if not hmac.compare_digest(_mac(secret, body, t), v1s[0]):
        raise InvalidAnswer(
            f"{SIGNATURE_HEADER} does not match the body (another secret, or changed on the way)"
        )


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
    import httpx  # noqa: PLC0415 - see the module's imports

    try:
        text = response.text
    except (httpx.HTTPError, UnicodeDecodeError):
        return ""
    text = " ".join(text.split())
    return text[:_ERROR_TEXT] + ("…" if len(text) > _ERROR_TEXT else "")


class PlatformClient:
    """Keep-alive connections to the platform, used by one thread at a time (one per worker).

    The requests run on a private event loop in the calling thread; `close()` may come from
    any thread and cancels the request in flight.
    """

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        clock_s: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._clock_s = clock_s
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._busy = False
        self._task: asyncio.Task[object] | None = None

    def close(self) -> None:
        """Cancel the request in flight (its caller gets Stopping) and close the connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._busy:
                # The caller's thread closes the connections when its request returns.
                if self._task is not None and self._loop is not None:
                    self._loop.call_soon_threadsafe(self._task.cancel)
                return
        self._shutdown()

    def _shutdown(self) -> None:
        if self._loop is None:
            return
        if self._http is not None:
            self._loop.run_until_complete(self._http.aclose())
        self._loop.close()

    def _run(self, request: Callable[[httpx.AsyncClient], Awaitable[R]]) -> R:
        """Run one request on the private loop, within the deadline, cancellable by close()."""
        with self._lock:
            if self._closed:
                raise Stopping("not sent: heliod is stopping")
            self._busy = True
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            loop = self._loop
        try:
            return loop.run_until_complete(self._guarded(request))
        except TimeoutError:
            raise Unavailable(
                f"no complete answer within {self.settings.timeout_s:g} s (the deadline)"
            ) from None
        except asyncio.CancelledError:
            raise Stopping("abandoned: heliod is stopping") from None
        finally:
            with self._lock:
                self._busy = False
                closed = bool(self._closed)  # close() may have come from another thread
            if closed:
                self._shutdown()

    async def _guarded(self, request: Callable[[httpx.AsyncClient], Awaitable[R]]) -> R:
        with self._lock:
            if self._closed:
                raise asyncio.CancelledError
            self._task = asyncio.current_task()
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await request(self._client())
        finally:
            with self._lock:
                self._task = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx  # noqa: PLC0415 - see the module's imports

            self._http = httpx.AsyncClient(
                verify=shared_context(),
                timeout=self.settings.timeout_s,
                follow_redirects=False,
                transport=self._transport,
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    @property
    def _timeout_text(self) -> str:
        return f"{self.settings.timeout_s:g} s"

    def _signed(self, body: bytes) -> dict[str, str]:
        return {SIGNATURE_HEADER: signature(self.settings.secret, body, int(self._clock_s()))}

    def push(self, event_id: str, body: bytes) -> int:
        """POST one event; returns the acknowledging status, raises Unavailable or Refused."""
        headers = {
            **self._signed(body),
            IDEMPOTENCY_HEADER: event_id,
            "Content-Type": "application/json",
        }

        async def post(http: httpx.AsyncClient) -> httpx.Response:
            import httpx  # noqa: PLC0415 - see the module's imports

            try:
                return await http.post(self.settings.push_url, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise Unavailable(f"timeout after {self._timeout_text} ({exc!r})") from None
            except httpx.HTTPError as exc:
                # Connection refused or reset, a response cut short: the platform may or may
                # not have the event, and the Idempotency-Key makes resending it harmless.
                raise Unavailable(f"{type(exc).__name__}: {exc}") from None

        response = self._run(post)
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
        """GET the plant's share register, signed over an empty body; its signed raw answer.

        Raises Unavailable (retry soon), Refused (a 4xx) or InvalidAnswer (a 200 answer
        that is too large or not signed by the platform's secret within the window).
        """
        url = self.settings.backers_url.replace("{plant}", plant)
        headers = self._signed(b"")

        async def get(http: httpx.AsyncClient) -> tuple[bytes, str | None]:
            import httpx  # noqa: PLC0415 - see the module's imports

            try:
                async with http.stream("GET", url, headers=headers) as response:
                    return await _register_answer(response)
            except httpx.TimeoutException as exc:
                raise Unavailable(f"timeout after {self._timeout_text} ({exc!r})") from None
            except httpx.HTTPError as exc:
                raise Unavailable(f"{type(exc).__name__}: {exc}") from None

        body, header = self._run(get)
        check_signature(self.settings.secret, header, body, self._clock_s())
        return body


async def _register_answer(response: httpx.Response) -> tuple[bytes, str | None]:
    """(raw body, signature header) of a 200 answer read within MAX_REGISTER_BYTES."""
    status = response.status_code
    if status != 200:
        await response.aread()
        message = f"HTTP {status}: {_excerpt(response)}".rstrip(": ")
        if status == 429 or status >= 500:
            raise Unavailable(message, status)
        raise Refused(message, status)
    too_large = f"answer larger than {MAX_REGISTER_BYTES} bytes"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_REGISTER_BYTES:
        raise InvalidAnswer(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_REGISTER_BYTES:
            raise InvalidAnswer(too_large)
        chunks.append(chunk)
    return b"".join(chunks), response.headers.get(SIGNATURE_HEADER)
