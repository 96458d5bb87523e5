"""The service tables: [daemon], [storage], [api], [mqtt], [influxdb], [platform], [log]."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from heliod.adapters.store.engine import store_url
from heliod.daemon.config.errors import fail, show
from heliod.daemon.config.types import (
    NonEmptyStr,
    OptionalFile,
    PositiveDuration,
    Section,
    base_dir,
    between,
    check_url,
    environment,
    matches,
    one_of,
    parse_url,
    url_of,
)

LogLevel = Literal["debug", "info", "warning", "error"]
STORAGE_BACKENDS = ("sqlite", "postgresql")
_LISTEN = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})")


def _state_dir(value: Any, info: ValidationInfo) -> Path:
    if value is None or value == "":
        # systemd's StateDirectory= sets $STATE_DIRECTORY, several paths colon-separated.
        value = environment(info).get("STATE_DIRECTORY", "").split(":")[0] or "var"
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    return base_dir(info) / value


class DaemonSection(Section):
    """[daemon]: where state lives and how much to log."""

    state_dir: Annotated[Path, BeforeValidator(_state_dir)] = Field(
        default=None, validate_default=True
    )
    log_level: Annotated[LogLevel, one_of(LogLevel)] = "info"


def _storage_url(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if not value:
        return value  # filled in by Config from state_dir
    try:
        return store_url(value, base_dir(info))
    except ValueError as exc:
        raise fail(str(exc).replace(value, show(value))) from None


class StorageSection(Section):
    """[storage]: the local store (embedded SQLite by default) and raw-data retention."""

    url: Annotated[str, BeforeValidator(_storage_url)] = ""
    raw_retention: PositiveDuration = timedelta(days=400)


def _sha256(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise fail(f"must be 64 lowercase hex digits (the token's SHA-256), got {show(value)}")
    return value


class ApiToken(Section):
    """One API client: a name for logs and the SHA-256 of its bearer token."""

    name: Annotated[str, matches(r"[A-Za-z0-9_.-]{1,64}")]
    sha256: Annotated[str, BeforeValidator(_sha256)]


class ApiSection(Section):
    """[api]: where the HTTP API and dashboard listen, and who may call them."""

    listen: str = "127.0.0.1:8080"
    tokens: list[ApiToken] = Field(default_factory=list)
    dashboard_public: StrictBool = False

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.fullmatch(value)
        ok = match is not None and 1 <= int(match["port"]) <= 65535
        if match and match["v6"]:
            try:
                ipaddress.IPv6Address(match["v6"])
            except ValueError:
                ok = False
        if not ok:
            raise fail(f'must be "host:port" or "[ipv6]:port", got {show(value)}')
        return value

    @property
    def host(self) -> str:
        """The address to bind, without brackets."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The TCP port to bind."""
        return int(self.listen.rsplit(":", 1)[1])


def _keepalive(value: timedelta) -> timedelta:
    # MQTT carries keepalive as a 16-bit number of seconds.
    if value % timedelta(seconds=1) or value > timedelta(seconds=65535):
        raise fail("must be whole seconds, at most 65535s")
    return value


def _topic_prefix(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
        raise fail(f"must be a topic without wildcards or outer slashes, got {show(value)}")
    return value


class MqttSection(Section):
    """[mqtt]: the broker heliod subscribes to (MQTT devices) and publishes on."""

    url: Annotated[str, url_of("mqtt", "mqtts")] = "mqtt://127.0.0.1:1883"
    username: str = ""
    password_file: OptionalFile = None
    client_id: NonEmptyStr = "heliod-gateway"
    publish_prefix: Annotated[str, BeforeValidator(_topic_prefix)] = "heliod"
    ha_discovery: StrictBool = False
    ca_file: OptionalFile = None
    cert_file: OptionalFile = None
    key_file: OptionalFile = None
    keepalive: Annotated[PositiveDuration, AfterValidator(_keepalive)] = timedelta(seconds=60)
    # Bytes, announced to the broker as the MQTT 5 Maximum Packet Size: larger messages
    # are discarded by the broker. 1 KiB still holds any telemetry message; 16 MiB is far
    # past any device's.
    max_packet_size: Annotated[int, between(1024, 16 * 1024 * 1024)] = 64 * 1024

    @field_validator("ha_discovery")
    @classmethod
    def _discovery(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("publish_prefix") == "":
            raise fail('needs a publish_prefix (it is "")')
        return value

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _tls_files(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        url = info.data.get("url")
        if value is not None and url is not None and not url.startswith("mqtts://"):
            raise fail("only used with an mqtts:// url")
        if info.field_name == "key_file" and value and info.data.get("cert_file") is None:
            raise fail("needs cert_file")
        return value

    @property
    def tls(self) -> bool:
        """True for mqtts:// URLs."""
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        """The broker's host name or address."""
        return parse_url(self.url, ("mqtt", "mqtts")).hostname or ""

    @property
    def port(self) -> int:
        """The broker's port: from the URL, else 8883 with TLS and 1883 without."""
        return parse_url(self.url, ("mqtt", "mqtts")).port or (8883 if self.tls else 1883)


class InfluxSection(Section):
    """[influxdb]: the InfluxDB 2 (or compatible) bucket readings and mints are exported to."""

    url: Annotated[str, url_of("http", "https")] = "http://127.0.0.1:8086"
    org: NonEmptyStr
    bucket: NonEmptyStr
    token_file: OptionalFile = None
    batch_size: Annotated[int, between(1, 100_000)] = 5000
    gzip: StrictBool = False  # compress each request (for a slow or metered uplink)


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _backers_url(value: Any) -> str:
    if value == "":
        return ""
    text = check_url(value, ("http", "https"))
    # The register decides who gets the tokens: over plain http anyone on the path could
    # rewrite it (its signature stops a forgery, not a reader). docs/platform.md, "Share register".
    parts = parse_url(text, ("http", "https"))
    if parts.scheme == "http" and not _loopback(parts.hostname or ""):
        raise fail(
            "must be an https:// URL (http:// only for a loopback host: localhost, "
            f"127.0.0.0/8, ::1), got {show(text)}"
        )
    if "{" in text.replace("{plant}", "") or "}" in text.replace("{plant}", ""):
        raise fail(f"may contain {{plant}} and no other braces, got {show(text)}")
    return text


PLATFORM_SECRET_ENV = "HELIOD_PLATFORM_SECRET"  # noqa: S105 - a variable name


def read_secret(path: Path) -> str:
    """A secret file's text without one trailing newline; OSError or ValueError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def blank(secret: str | None) -> bool:
    """True for no key at all: absent, empty or only whitespace (an HMAC over it is forgeable)."""
    return not (secret or "").strip()


class PlatformSection(Section):
    """[platform]: where mint events are pushed and the share register is pulled from."""

    push_url: Annotated[str, url_of("http", "https")]
    # Required: every push and register request is signed with it (never with an empty key).
    secret_file: OptionalFile = Field(default=None, validate_default=True)
    backers_url: Annotated[str, BeforeValidator(_backers_url)] = ""
    timeout: PositiveDuration = timedelta(seconds=10)
    retry_max_interval: PositiveDuration = timedelta(minutes=10)

    @field_validator("secret_file")
    @classmethod
    def _secret_present(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Checked when the file is loaded, so check-config and run refuse the same files.
        if not blank(environment(info).get(PLATFORM_SECRET_ENV)):
            return value  # the variable wins over the file (docs/configuration.md)
        if value is None:
            raise fail(
                f"required: the file holding the platform secret (or ${PLATFORM_SECRET_ENV})"
            )
        try:
            secret = read_secret(value)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise fail(f"cannot read {value}: {reason}") from None
        if blank(secret):
            raise fail(f"required: {value} is empty (or set ${PLATFORM_SECRET_ENV})")
        return value

    @field_validator("retry_max_interval")
    @classmethod
    def _at_least_first_delay(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):  # docs/platform.md: backoff starts at 1 s
            raise fail("must be at least 1s")
        return value


LOG_KEY_NAME = "log-signing.pem"  # the key file's default name, in the state directory
_ORIGIN_PREFIX = re.compile(r"[!-*,-~]{1,128}")  # printable ASCII, no space and no "+"


def _origin_prefix(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    # The origin names the signing key in signed notes, where a key name may hold
    # neither a space nor "+" (docs/verification.md, "Checkpoints").
    if not _ORIGIN_PREFIX.fullmatch(value) or value.startswith("/") or value.endswith("/"):
        raise fail(
            'must be 1 to 128 printable ASCII characters without space, "+" or outer '
            f'slashes (e.g. "heliod" or "solar.example.org/heliod"), got {show(value)}'
        )
    return value


class LogSection(Section):
    """[log]: the verifiable ledger's signing key and the checkpoints' origin."""

    # None: filled in by Config (the credential named log-signing.pem, else the file in
    # state_dir); the file is created at first start when absent.
    signing_key_file: OptionalFile = None
    origin_prefix: Annotated[str, BeforeValidator(_origin_prefix)] = "heliod"

    def origin(self, plant_id: str) -> str:
        """The checkpoint origin, also the key name, of a plant's log."""
        return f"{self.origin_prefix}/{plant_id}"
