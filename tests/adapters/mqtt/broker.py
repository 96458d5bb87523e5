"""A real Mosquitto broker for the tests: free loopback port, persistence on, restartable."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import free_port, wait_port


@dataclass(frozen=True)
class Certs:
    """Paths of a test CA and the certificates it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path, name: str = "test") -> Certs:
    """A throwaway CA and a server (127.0.0.1/localhost) and client certificate signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        f"/CN=heliod {name} CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    for who, usage, san in (
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        ("client", "clientAuth", ""),
    ):
        _openssl(
            "req",
            *ec,
            "-keyout",
            f"{who}.key",
            "-out",
            f"{who}.csr",
            "-subj",
            f"/CN=heliod-{who}",
            cwd=folder,
        )
        (folder / f"{who}.ext").write_text(
            san
            + "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            + f"extendedKeyUsage={usage}\nauthorityKeyIdentifier=keyid\n"
            + "subjectKeyIdentifier=hash\n"
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{who}.crt",
            "-days",
            "2",
            "-extfile",
            f"{who}.ext",
            cwd=folder,
        )
    return Certs(
        ca=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
    )


class Broker:
    """Mosquitto on a free port with persistence in `folder`; stop/start keeps the port."""

    def __init__(
        self,
        binary: str,
        folder: Path,
        *,
        certs: Certs | None = None,
        password_file: Path | None = None,
        extra: str = "",
    ) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.certs = certs
        self.password_file = password_file
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """mqtt:// or mqtts:// url of the listener."""
        return f"{'mqtts' if self.certs else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.folder}/",
            # Big enough for the tests' backlogs; plants need the same, see docs/mqtt.md.
            "max_queued_messages 200000",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"log_dest file {self.folder}/mosquitto.log",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.certs is not None:
            c = self.certs
            lines += [
                f"cafile {c.ca}",
                f"certfile {c.server_cert}",
                f"keyfile {c.server_key}",
                "require_certificate true",
            ]
        return "\n".join(lines) + "\n" + self.extra

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stderr=subprocess.PIPE)
        wait_port("127.0.0.1", self.port)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and persistence file."""
        self.stop()
        self.start()

    def log(self) -> str:
        """The broker's log, for failure messages."""
        path = self.folder / "mosquitto.log"
        return path.read_text() if path.exists() else ""


class Publisher:
    """A plain paho client that publishes test messages at QoS 1 and waits for the broker."""

    def __init__(self, broker: Broker, client_id: str = "test-publisher") -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self._acked: set[int] = set()
        self._cond = threading.Condition()
        self.client.on_publish = self._on_publish
        if broker.certs is not None:
            self.client.tls_set(
                ca_certs=str(broker.certs.ca),
                certfile=str(broker.certs.client_cert),
                keyfile=str(broker.certs.client_key),
            )
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(
        self,
        messages: list[tuple[str, bytes]],
        qos: int = 1,
        retain: bool = False,
        timeout: float = 30.0,
    ) -> None:
        """Publish every message and wait until the broker acknowledged each."""
        # While the broker is away paho queues QoS 1 messages (rc NO_CONN) and sends them
        # after reconnecting, so wait for each PUBACK rather than on the rc.
        mids = [self.client.publish(t, p, qos=qos, retain=retain).mid for t, p in messages]
        with self._cond:
            ok = self._cond.wait_for(lambda: self._acked.issuperset(mids), timeout)
            self._acked.difference_update(mids)
        if not ok:
            raise TimeoutError("the broker did not acknowledge every message")

    def _on_publish(self, _c: object, _u: object, mid: int, *_: object) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()


class Collector:
    """Subscribes with a plain paho client and records (topic, payload, retain) in order."""

    def __init__(self, broker: Broker, topic: str, client_id: str = "test-collector") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        if broker.certs is not None:
            self.client.tls_set(
                ca_certs=str(broker.certs.ca),
                certfile=str(broker.certs.client_cert),
                keyfile=str(broker.certs.client_key),
            )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        # Returning before the SUBACK would let a test publish a non-retained message
        # that nobody is subscribed to yet (a flaky test).
        if not subscribed.wait(10):
            self.close()
            raise AssertionError(f"collector: no SUBACK for {topic} within 10 s")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: object, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        """Wait until predicate(messages) is true; return the messages."""
        assert callable(predicate)
        with self._cond:
            self._cond.wait_for(lambda: predicate(self.messages), timeout)
            return list(self.messages)

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()
