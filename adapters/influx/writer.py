"""Writing line protocol to InfluxDB 2's write endpoint with httpx, errors sorted in two kinds.

InfluxDB 2's write API is one request (docs/export.md): `POST /api/v2/write?org=&bucket=
&precision=us` with `Authorization: Token <token>` and the line protocol as the body
(lines.py renders it), answered 204 when every point was taken. One `httpx.Client` per
writer keeps one connection pool, so every batch reuses the same HTTP connection. httpx
is imported when the first writer is made: a daemon without `[influxdb]` never loads it.
The export loop decides when to try again (it alone knows the position); this module only
says whether trying again can help.

`gzip` (off by default) compresses each body at zlib level 1: about 10× fewer bytes, for
a slow uplink; on a LAN it only adds CPU on both sides (docs/performance.md).

| answer | error | the export loop |
| --- | --- | --- |
| 2xx | none | advances the position |
| connection error, timeout, 429, 5xx | `InfluxUnavailable` (retryable) | backs off, resends |
| 401, 403 | `InfluxAuthError` (permanent) | stops and says so, retries slowly |
| 400, 413, 422 | `InfluxRefused` (permanent, about the data) | bisects the batch |
| 404, other 4xx, 3xx (not followed) | `PermanentError` | stops and says so, retries slowly |

The timeout applies to each connect, read and write, not to the whole request (as it did
with influxdb-client): a server that trickles its answer holds the export, never a reading.

The body goes to httpx as a one-item iterator with its Content-Length set, not as bytes:
httpx keeps each response and its request (hence a bytes body) in a reference cycle that
only the cyclic garbage collector frees, about ten requests later, so a backlog drain
held some ten 0.5 MB bodies it had already sent. The iterator lets go of the body once
sent; the request is byte for byte the same (docs/performance.md, "InfluxDB export").
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.tls import shared_context

if TYPE_CHECKING:
    import httpx  # when the first writer is made: see the module's docstring

REFUSED_DATA = frozenset({400, 413, 422})  # the server parsed the request and refused points
MAX_DETAIL = 300  # characters of the server's message kept in errors and logs
WRITE_PATH = "/api/v2/write"
# The body's timestamps are µs since the epoch: the store's ts_us, as they are.
PRECISION = "us"
_CONTENT_TYPE = "text/plain; charset=utf-8"
GZIP_LEVEL = 1  # fastest: line protocol compresses about 10× even so
# Where InfluxDB puts its message when the body has none (then the HTTP reason is used).
_ERROR_HEADERS = ("X-Platform-Error-Code", "X-Influx-Error", "X-InfluxDb-Error")


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """Where and how to write: plain values, so the adapter needs no configuration model."""

    url: str
    org: str
    bucket: str
    token: str = field(default="", repr=False)  # a secret: never in repr or logs
    timeout_s: float = 30.0
    gzip: bool = False

    def where(self) -> str:
        """The destination as shown in messages (never the token)."""
        return f"{self.url} (org {self.org!r}, bucket {self.bucket!r})"


class InfluxUnavailable(RetryableError):
    """The server could not take the batch now; `retry_after_s` is its Retry-After, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InfluxAuthError(PermanentError):
    """The server refused the token (401) or its permissions (403): a person must act."""


class InfluxRefused(PermanentError):
    """The server refused (some of) the batch's points: 400 bad data, 413 too large, 422."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class InfluxWriter:
    """Writes line-protocol bodies (precision µs) to one InfluxDB 2 bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        import httpx  # noqa: PLC0415 - see the module's imports

        self.settings = settings
        self._url = settings.url.rstrip("/") + WRITE_PATH
        self._params = {"org": settings.org, "bucket": settings.bucket, "precision": PRECISION}
        headers = {"Content-Type": _CONTENT_TYPE, "Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Token {settings.token}"
        self._client = httpx.Client(
            verify=shared_context(),
            timeout=settings.timeout_s,
            headers=headers,
            follow_redirects=False,
        )

    def write(self, body: bytes) -> None:
        """Send one body; returns once the server has accepted every point in it."""
        import httpx  # noqa: PLC0415 - see the module's imports

        if not body:
            return
        s = self.settings
        headers = {}
        if s.gzip:
            # wbits 31: a gzip member, as Content-Encoding: gzip means.
            body = zlib.compress(body, GZIP_LEVEL, wbits=31)
            headers["Content-Encoding"] = "gzip"
        # Last, where httpx puts it for a bytes body; with it set, no chunked encoding.
        headers["Content-Length"] = str(len(body))
        try:
            answer = self._client.post(
                self._url, params=self._params, content=_once(body), headers=headers
            )
        except (httpx.HTTPError, OSError) as exc:
            raise InfluxUnavailable(f"InfluxDB at {s.url} is unreachable: {exc}") from exc
        if answer.is_redirect:
            raise _moved(answer.status_code, answer.headers.get("Location"), s)
        if not answer.is_success:
            raise classify(
                answer.status_code, _detail(answer), answer.headers.get("Retry-After"), s
            )

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()


def _once(body: bytes) -> Iterator[bytes]:
    """The body, then nothing: the request no longer holds it once it is sent (see the
    module's docstring)."""
    yield body


def classify(status: int, detail: str, retry_after: str | None, s: InfluxSettings) -> Exception:
    """Our error for an HTTP error answer of the write endpoint."""
    where = s.where()
    if status in (401, 403):
        what = "refused the token" if status == 401 else "does not let the token write"
        return InfluxAuthError(
            f"InfluxDB at {where} {what} (HTTP {status}: {detail}): check influxdb.token_file "
            "and that the token has write permission on the bucket"
        )
    if status in REFUSED_DATA:
        return InfluxRefused(
            f"InfluxDB at {where} refused the batch (HTTP {status}: {detail})", status, detail
        )
    if status == 429 or status >= 500:
        return InfluxUnavailable(
            f"InfluxDB at {where} is unavailable (HTTP {status}: {detail})",
            _seconds(retry_after),
        )
    if status == 404:
        return PermanentError(
            f"InfluxDB at {where}: org or bucket not found (HTTP 404: {detail}): "
            "check influxdb.org and influxdb.bucket"
        )
    return PermanentError(f"InfluxDB at {where} answered HTTP {status}: {detail}")


def _moved(status: int, location: str | None, s: InfluxSettings) -> Exception:
    """A redirect, which the writer does not follow (the token must not go elsewhere)."""
    return PermanentError(
        f"InfluxDB at {s.where()} answered HTTP {status}, a redirect to {location or '?'}: "
        "not followed; set influxdb.url to where it points if that is the server"
    )


def _detail(answer: httpx.Response) -> str:
    """The server's message: the `message` of its JSON body, else the body, a header, the reason."""
    message = ""
    if answer.content:
        message = answer.content.decode("utf-8", "replace")
        try:
            found = json.loads(message)["message"]
        except (ValueError, TypeError, KeyError, RecursionError):
            pass
        else:
            message = "" if found is None else str(found)
    else:
        for name in _ERROR_HEADERS:
            if (value := answer.headers.get(name)) is not None:
                message = value
                break
        else:
            message = answer.reason_phrase
    text = " ".join(message.split())
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored: backoff applies then)."""
    try:
        return max(0.0, float(str(value)))
    except (TypeError, ValueError):
        return None
