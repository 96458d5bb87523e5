"""Writing line protocol with influxdb-client's low-level WriteService, errors sorted in two kinds.

One `InfluxDBClient` per writer keeps one urllib3 pool, so every batch reuses the same
HTTP connection. Bodies are already line protocol as bytes, so they go straight to the
client's `WriteService.post_write` (the call its WriteApi ends in), without the WriteApi's
record serialization. The client's own retries are off: the export loop decides when to
try again (it alone knows the position), this module only says whether trying again can
help.

`gzip` (off by default) compresses each body at zlib level 1 (the client's own option
uses level 9, which costs about 6 µs of CPU per point): about 10× fewer bytes, for a
slow uplink; on a LAN it only adds CPU on both sides (docs/performance.md).

| answer | error | the export loop |
| --- | --- | --- |
| 2xx | none | advances the position |
| connection error, timeout, 429, 5xx | `InfluxUnavailable` (retryable) | backs off, resends |
| 401, 403 | `InfluxAuthError` (permanent) | stops and says so, retries slowly |
| 400, 413, 422 | `InfluxRefused` (permanent, about the data) | bisects the batch |
| 404 and other 4xx | `PermanentError` | stops and says so, retries slowly |
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import cast

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError as Urllib3Error

from heliod.adapters.errors import PermanentError, RetryableError

REFUSED_DATA = frozenset({400, 413, 422})  # the server parsed the request and refused points
MAX_DETAIL = 300  # characters of the server's message kept in errors and logs
# The body's timestamps are µs since the epoch: the store's ts_us, as they are.
_MICROSECONDS = cast(WritePrecision, WritePrecision.US)
_CONTENT_TYPE = "text/plain; charset=utf-8"
GZIP_LEVEL = 1  # fastest: line protocol compresses about 10× even so


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
        self.settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
            retries=False,
        )
        self._service = WriteService(self._client.api_client)  # type: ignore[no-untyped-call]

    def write(self, body: bytes) -> None:
        """Send one body; returns once the server has accepted every point in it."""
        if not body:
            return
        s = self.settings
        extra = {}
        if s.gzip:
            # wbits 31: a gzip member, as Content-Encoding: gzip means.
            body = zlib.compress(body, GZIP_LEVEL, wbits=31)
            extra["content_encoding"] = "gzip"
        try:
            self._service.post_write(  # type: ignore[no-untyped-call]
                org=s.org,
                bucket=s.bucket,
                body=body,
                precision=_MICROSECONDS,
                content_type=_CONTENT_TYPE,
                **extra,
            )
        except InfluxDBError as exc:
            raise classify(exc, s) from exc
        except (Urllib3Error, OSError) as exc:
            raise InfluxUnavailable(f"InfluxDB at {s.url} is unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()  # type: ignore[no-untyped-call]


def classify(exc: InfluxDBError, s: InfluxSettings) -> Exception:
    """Our error for an HTTP error answer of the write endpoint."""
    status = int(getattr(exc, "status", 0) or getattr(exc.response, "status", 0) or 0)
    detail = _detail(exc)
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
            _seconds(exc.retry_after),
        )
    if status == 404:
        return PermanentError(
            f"InfluxDB at {where}: org or bucket not found (HTTP 404: {detail}): "
            "check influxdb.org and influxdb.bucket"
        )
    return PermanentError(f"InfluxDB at {where} answered HTTP {status}: {detail}")


def _detail(exc: InfluxDBError) -> str:
    message = exc.message
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    text = " ".join(str(message or "").split())
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def _seconds(value: object) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored: backoff applies then)."""
    try:
        return max(0.0, float(str(value)))
    except (TypeError, ValueError):
        return None
