"""End-to-end MQTT ingest rate: broker -> heliod subscriber -> durable store, vs a bare paho client.

Starts its own Mosquitto (persistence on, free loopback port, temporary folder), loads a
backlog of QoS 1 messages into a persistent session, then times how fast each consumer
drains it:

- bare: a plain paho MQTT 5 client, QoS 1, automatic PUBACK, that only counts messages;
- heliod: MqttSubscriber decoding each message (exact Decimals) and committing batches to
  the real store (SQLite by default) before acknowledging them.

Both run in the same process, one after the other, on the same broker and the same
backlog, so the ratio between them is what this machine allows.

    .venv/bin/python bench/mqtt_ingest.py [--messages 50000] [--rounds 3] [--devices 50]
                                         [--batch 1000] [--db URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from heliod.adapters.mqtt import DeviceSettings, FieldSpec, MqttSettings, MqttSubscriber
from heliod.adapters.store import Store
from heliod.rewards.readings import Reading
from heliod.rewards.times import to_us

TOPIC = "tele/bench{:03d}/SENSOR"
DEVICE = DeviceSettings(
    id="bench",
    topic="tele/+/SENSOR",
    fields={
        "energy_wh": FieldSpec("ENERGY.Total", "kWh"),
        "power_w": FieldSpec("ENERGY.Power", "W"),
        "voltage": FieldSpec("ENERGY.Voltage", "V"),
    },
    timestamp_path="Time",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {folder}/\nmax_queued_messages 0\n"
        f"user {pwd.getpwuid(os.getuid()).pw_name}\nlog_dest file {folder}/mosquitto.log\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def client(client_id: str) -> mqtt.Client:
    return mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )


def session_props(receive_max: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = receive_max
    return props


def make_session(port: int, client_id: str) -> None:
    """Create a persistent session subscribed to the devices, then leave."""
    c = client(client_id)
    done = threading.Event()
    c.on_subscribe = lambda *_: done.set()
    c.connect("127.0.0.1", port, clean_start=True, properties=session_props(2000))
    c.loop_start()
    c.subscribe(DEVICE.topic, qos=1)
    if not done.wait(10):
        raise SystemExit("no SUBACK")
    c.disconnect()
    c.loop_stop()


def message(i: int, devices: int, start_ts: int) -> tuple[str, bytes]:
    """Topic and Tasmota-like payload of message number i (about 230 bytes)."""
    d, k = i % devices, i // devices
    payload = (
        f'{{"Time":{start_ts + i},"ENERGY":{{"TotalStartTime":"2024-01-01T00:00:00",'
        f'"Total":{1000 + k * 0.013:.3f},"Yesterday":5.340,"Today":0.954,"Period":2,'
        f'"Power":{1500 + (i % 700)},"ApparentPower":2650,"ReactivePower":282,'
        f'"Factor":0.99,"Voltage":{228 + i % 5},"Current":11.661}}}}'
    )
    return TOPIC.format(d), payload.encode()


def load_backlog(port: int, first: int, messages: int, devices: int, start_ts: int) -> float:
    """Publish Tasmota-like payloads number first..first+messages at QoS 1; the publish rate."""
    c = client("bench-publisher")
    c.max_inflight_messages_set(1000)
    acked = threading.Semaphore(0)
    c.on_publish = lambda *_: acked.release()
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    # In windows of 1000: paho scans its whole outgoing queue on every PUBACK, so queueing
    # the entire backlog at once would make loading quadratic.
    for lo in range(first, first + messages, 1000):
        hi = min(lo + 1000, first + messages)
        for i in range(lo, hi):
            c.publish(*message(i, devices, start_ts), qos=1)
        for _ in range(lo, hi):
            acked.acquire()
    rate = messages / (time.perf_counter() - t0)
    c.disconnect()
    c.loop_stop()
    return rate


@dataclass
class Drain:
    """One consumer draining one backlog."""

    rate: float  # messages per second, wall clock
    cpu_us: float  # CPU time of this process (all threads) per message, in µs
    # heliod only: CPU per message of paho's network thread and of the commit worker, µs
    paho_us: float = float("nan")
    worker_us: float = float("nan")


def thread_cpu_s(native_id: int | None) -> float:
    """CPU time (user + system) a thread of this process has used, from /proc (Linux)."""
    try:
        stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # after the thread's name: state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bare(port: int, messages: int, receive_max: int) -> Drain:
    """Drain the backlog with a counting-only paho client; messages per second."""
    c = client("bench-bare")
    count = [0]
    done = threading.Event()

    def on_message(*_: object) -> None:
        count[0] += 1
        if count[0] >= messages:
            done.set()

    c.on_message = on_message
    t0, cpu0 = time.perf_counter(), time.process_time()
    c.connect("127.0.0.1", port, clean_start=False, properties=session_props(receive_max))
    c.loop_start()
    if not done.wait(600):
        raise SystemExit(f"bare subscriber got {count[0]} of {messages}")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    c.disconnect()
    c.loop_stop()
    return Drain(messages / elapsed, cpu / messages * 1e6)


class HeliodConsumer:
    """MqttSubscriber into the store, started once per round and stopped after the drain."""

    def __init__(self, port: int, db_url: str, batch_max: int) -> None:
        self.store = Store.open(db_url)
        self.settings = MqttSettings(
            url=f"mqtt://127.0.0.1:{port}", client_id="bench-heliod", devices=(DEVICE,)
        )
        self.batch_max = batch_max
        self.stored = 0
        self.rejected = 0

    def run(self, messages: int) -> Drain:
        """Drain `messages` through MqttSubscriber into the store; messages per second."""
        target = self.stored + self.rejected + messages
        done = threading.Event()

        def sink(readings: list[Reading]) -> None:
            result = self.store.ingest(readings, to_us(datetime.now(UTC)))
            self.stored += result.stored
            self.rejected += len(result.rejected)
            if self.stored + self.rejected >= target:
                done.set()

        sub = MqttSubscriber(self.settings, sink, batch_max=self.batch_max)
        t0, cpu0 = time.perf_counter(), time.process_time()
        sub.start()
        if not done.wait(600):
            raise SystemExit(f"heliod stored {self.stored} of {target}")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        # Both threads start with the subscriber: their whole CPU time is this drain's.
        paho = thread_cpu_s(getattr(getattr(sub, "_client", None), "_thread", None).native_id)
        worker = thread_cpu_s(getattr(sub, "_worker", None).native_id)
        sub.stop()
        per = 1e6 / messages
        return Drain(messages / elapsed, cpu * per, paho * per, worker * per)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="medians over rounds")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="heliod batch_max")
    parser.add_argument("--db", default="", help="store URL (default: SQLite in a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    rounds = max(1, args.rounds)
    pub_rates: list[float] = []
    bares: list[Drain] = []
    heliods: list[Drain] = []
    with tempfile.TemporaryDirectory(prefix="heliod-bench-") as tmp:
        folder = Path(tmp)
        broker, port = start_broker(folder)
        try:
            make_session(port, "bench-bare")
            make_session(port, "bench-heliod")
            consumer = HeliodConsumer(
                port, args.db or f"sqlite:///{folder / 'heliod.db'}", args.batch
            )
            # Timestamps increase across rounds and end before now (the store rejects the future).
            start_ts = int(time.time()) - rounds * args.messages
            for r in range(rounds):
                # One backlog per round, queued for both sessions; consumers alternate.
                pub_rates.append(
                    load_backlog(port, r * args.messages, args.messages, args.devices, start_ts)
                )
                bares.append(run_bare(port, args.messages, receive_max=2 * args.batch))
                heliods.append(consumer.run(args.messages))
            consumer.store.close()
        finally:
            broker.send_signal(signal.SIGTERM)
            broker.wait(30)
    bare = statistics.median(d.rate for d in bares)
    heliod = statistics.median(d.rate for d in heliods)
    stored, rejected = consumer.stored, consumer.rejected
    result = {
        "messages_per_round": args.messages,
        "rounds": rounds,
        "devices": args.devices,
        "batch_max": args.batch,
        "store": (args.db or "sqlite (temp file)").split("://")[0],
        "backlog_publish_msg_s": round(statistics.median(pub_rates)),
        "bare_paho_msg_s": round(bare),
        "heliod_to_store_msg_s": round(heliod),
        "ratio": round(heliod / bare, 3),
        "bare_rounds": [round(d.rate) for d in bares],
        "heliod_rounds": [round(d.rate) for d in heliods],
        # CPU per message does not depend on what else runs on the machine.
        "bare_cpu_us_per_msg": round(statistics.median(d.cpu_us for d in bares), 1),
        "heliod_cpu_us_per_msg": round(statistics.median(d.cpu_us for d in heliods), 1),
        "cpu_ratio": round(
            statistics.median(d.cpu_us for d in bares)
            / statistics.median(d.cpu_us for d in heliods),
            3,
        ),
        # Of heliod's: paho's network thread and the commit worker (decode, store, PUBACKs).
        "heliod_paho_thread_us_per_msg": round(statistics.median(d.paho_us for d in heliods), 1),
        "heliod_worker_us_per_msg": round(statistics.median(d.worker_us for d in heliods), 1),
        "heliod_cpu_rounds": [round(d.cpu_us, 1) for d in heliods],
        "bare_cpu_rounds": [round(d.cpu_us, 1) for d in bares],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "stored": stored,
        "rejected": rejected,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    ok = heliod >= 5000 and heliod >= 0.5 * bare and stored == rounds * args.messages
    if args.json:
        print(json.dumps({**result, "target_met": ok}))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
        print(f"{'target (>=5000/s, >=50% of bare)':>24}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
