"""mqtts:// with a CA and client certificate made by the test, and password authentication."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from heliod.adapters.errors import PermanentError
from heliod.adapters.mqtt import MqttPublisher, MqttSettings, MqttSubscriber
from heliod.adapters.mqtt.connection import tls_context
from tests.adapters.mqtt.broker import Broker, Certs, Collector, Publisher, make_certs
from tests.adapters.mqtt.conftest import RecordingSink
from tests.adapters.mqtt.test_subscriber import METER, msg
from tests.support import require_binary


@pytest.fixture
def tls_broker(mosquitto_bin: str, tmp_path: Path, certs: Certs) -> Iterator[Broker]:
    b = Broker(mosquitto_bin, tmp_path / "tls-broker", certs=certs)
    b.start()
    yield b
    b.stop()


def tls_settings(
    broker: Broker,
    certs: Certs,
    ca_file: str = "",
    cert_file: str | None = None,
    key_file: str | None = None,
) -> MqttSettings:
    return MqttSettings(
        url=broker.url,
        client_id="heliod-tls",
        devices=(METER,),
        ca_file=ca_file or str(certs.ca),
        cert_file=str(certs.client_cert) if cert_file is None else cert_file,
        key_file=str(certs.client_key) if key_file is None else key_file,
        reconnect_max_delay=1,
    )


def test_subscriber_and_publisher_over_tls(
    tls_broker: Broker, certs: Certs, sink: RecordingSink
) -> None:
    assert tls_broker.url.startswith("mqtts://")
    sub = MqttSubscriber(tls_settings(tls_broker, certs), sink)
    sub.start()
    pub = MqttPublisher(tls_settings(tls_broker, certs), "heliod", ["p1"])
    reader = Collector(tls_broker, "heliod/#")
    try:
        assert sub.wait_connected(10), sub.last_error
        time.sleep(0.3)
        device = Publisher(tls_broker)
        device.publish([msg(7)])
        device.close()
        readings = sink.wait_for(1)
        pub.start()
        assert pub.wait_connected(10)
        pub.publish_state("p1", {"energy_wh": Decimal("7.000")})
        got = reader.wait_for(lambda m: any(t == "heliod/p1/state" for t, _, _ in m))
    finally:
        reader.close()
        pub.stop()
        sub.stop()
    assert [r.fields["energy_wh"] for r in readings] == [Decimal("7.000")]
    assert (b'{"energy_wh":7.000}') in [p for t, p, _ in got if t == "heliod/p1/state"]


def test_a_broker_signed_by_another_ca_is_refused(
    tls_broker: Broker, tmp_path: Path, certs: Certs, sink: RecordingSink
) -> None:
    other = make_certs(tmp_path / "other", "other")
    settings = tls_settings(tls_broker, certs, ca_file=str(other.ca))
    sub = MqttSubscriber(settings, sink)
    sub.start()
    try:
        assert not sub.wait_connected(2)
        assert sub.last_error is not None
    finally:
        sub.stop()


def test_without_client_certificate_the_broker_refuses(
    tls_broker: Broker, certs: Certs, sink: RecordingSink
) -> None:
    settings = tls_settings(tls_broker, certs, cert_file="", key_file="")
    sub = MqttSubscriber(settings, sink)
    sub.start()
    try:
        assert not sub.wait_connected(2)
    finally:
        sub.stop()


def test_missing_tls_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="TLS files"):
        tls_context(MqttSettings(url="mqtts://127.0.0.1", ca_file=str(tmp_path / "nope.crt")))


@pytest.fixture
def password_broker(mosquitto_bin: str, tmp_path: Path) -> Iterator[Broker]:
    passwd = require_binary("mosquitto_passwd")
    pwfile = tmp_path / "passwords"
    subprocess.run([passwd, "-b", "-c", str(pwfile), "heliod", "s3cret pass"], check=True)
    b = Broker(mosquitto_bin, tmp_path / "pw-broker", password_file=pwfile)
    b.start()
    yield b
    b.stop()


def test_username_and_password(password_broker: Broker, sink: RecordingSink) -> None:
    good = MqttSettings(
        url=password_broker.url, username="heliod", password="s3cret pass", devices=(METER,)
    )
    sub = MqttSubscriber(good, sink)
    sub.start()
    try:
        assert sub.wait_connected(10), sub.last_error
    finally:
        sub.stop()
    assert "s3cret" not in repr(good)  # never in logs or tracebacks


def test_wrong_password_is_a_permanent_error(password_broker: Broker, sink: RecordingSink) -> None:
    bad = MqttSettings(
        url=password_broker.url,
        username="heliod",
        password="guess",
        devices=(METER,),
        reconnect_max_delay=1,
    )
    sub = MqttSubscriber(bad, sink)
    sub.start()
    try:
        assert not sub.wait_connected(2)
        assert isinstance(sub.last_error, PermanentError), sub.last_error
    finally:
        sub.stop()
