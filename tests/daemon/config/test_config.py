"""The configuration model (docs/configuration.md), through the real loader and validator."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from heliod.daemon.boot.settings import export_parts, mqtt_parts
from heliod.daemon.config import (
    DEFAULT_PATH,
    Config,
    ConfigError,
    ModbusDevice,
    MqttDevice,
    config_path,
    load_config,
    parse_duration,
    shipped_profiles,
)
from tests.support import ROOT

EXAMPLE = ROOT / "config" / "heliod.example.toml"
HASH = hashlib.sha256(b"token").hexdigest()

# One plant with one SunSpec inverter: the smallest valid file. Lines appended to it
# land in the inverter's table; tables appended after it add devices or plants.
BASE = """\
[[plants]]
id = "p1"
capacity_kw = 100
energy_devices = ["inv1"]

[plants.reward]
symbol = "SLR"
tokens_per_mwh = "1"

[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "10.0.0.1"
"""

MQTT_DEVICE = """
[[plants.devices]]
id = "meter1"
protocol = "mqtt"
topic = "tele/meter1/SENSOR"
fields.energy_wh = { path = "ENERGY.Total", unit = "kWh" }
"""

SECOND_PLANT = """
[[plants]]
id = "p2"
capacity_kw = 10
energy_devices = ["inv9"]
reward = { symbol = "SUN", tokens_per_mwh = "2" }

[[plants.devices]]
id = "inv9"
protocol = "modbus"
host = "10.0.0.9"
"""


def write(tmp_path: Path, text: str, name: str = "heliod.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env={} if env is None else env)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


# --- the example file is the manual -------------------------------------------------


def test_example_loads_with_the_contract_values() -> None:
    config = load_config(EXAMPLE, env={"HELIOD_PLATFORM_SECRET": "s3cret"})
    plant = config.plant("brassemonte")
    assert isinstance(plant.capacity_kw, Decimal)
    assert str(plant.capacity_kw) == "250.0"
    assert plant.max_overload == Decimal("1.2")
    assert plant.timezone == "Europe/Paris"
    assert plant.energy_devices == ["inv1", "inv2"]
    assert plant.reward.units_per_mwh == 10**8
    assert plant.reward.start == datetime(2016, 12, 1, tzinfo=UTC)
    assert [d.id for d in plant.devices] == ["inv1", "inv2", "meter1"]
    _, inv1 = config.device("inv1")
    assert isinstance(inv1, ModbusDevice)
    assert (inv1.host, inv1.port, inv1.unit_id, inv1.profile) == ("192.168.1.20", 502, 1, "sunspec")
    assert inv1.poll_interval == timedelta(seconds=10)
    assert inv1.timeout == timedelta(seconds=2)
    assert inv1.unit_id_or(3) == 3  # unset: a profile's default unit id wins
    _, inv2 = config.device("inv2")
    assert isinstance(inv2, ModbusDevice)
    assert inv2.unit_id_or(3) == 1  # written in the file
    _, meter = config.device("meter1")
    assert isinstance(meter, MqttDevice)
    assert meter.fields["energy_wh"].path == "ENERGY.Total"
    assert meter.fields["energy_wh"].unit == "kWh"
    assert meter.timestamp is not None
    assert meter.timestamp.path == "Time"
    assert config.storage.raw_retention == timedelta(days=400)
    assert config.daemon.state_dir == EXAMPLE.parent / "var"
    assert config.storage.url == f"sqlite:///{EXAMPLE.parent / 'var' / 'heliod.db'}"
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port) == ("127.0.0.1", 1883)
    assert config.influxdb is not None
    assert config.influxdb.batch_size == 5000
    assert config.influxdb.token_file == EXAMPLE.parent / "influx.token"
    assert config.platform is not None
    assert config.platform.timeout == timedelta(seconds=10)
    assert config.platform.retry_max_interval == timedelta(minutes=10)
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8080)
    assert config.energy_device_ids() == {"inv1", "inv2"}
    assert config.path == EXAMPLE
    assert config.base_dir == EXAMPLE.parent


def _keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key name of a model and of the tables nested in it."""
    names: set[str] = set()
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(name)
        stack = [info.annotation]
        while stack:  # walk list[X], dict[K, X], X | None, Annotated[…] down to models
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                if t not in seen:
                    names |= _keys(t, seen)
            else:
                stack.extend(getattr(t, "__args__", ()))
                if origin := getattr(t, "__origin__", None):
                    stack.append(origin)
    return names


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = _keys(Config, set())
    assert {"port", "word_order", "sha256", "keepalive", "interval", "start"} <= keys
    # a key is documented when it is set or shown commented: `key =`, `[key]`, `key.x =`
    missing = [
        k
        for k in sorted(keys)
        if not re.search(rf"(^#?[ \t]*|[{{,\[.][ \t]*){k}([ \t]*=|\]|\.)", text, re.M)
    ]
    assert missing == []


# --- one test per kind of mistake, each asserting the exact line --------------------


def test_port_out_of_range(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "port = 70000\n") == [
        "plants[0].devices[0].port: must be 1..65535, got 70000"
    ]


def test_influxdb_gzip_is_off_unless_set_true(tmp_path: Path) -> None:
    influx = '[influxdb]\norg = "solar"\nbucket = "heliod"\n'
    assert not export_parts(load(tmp_path, influx + "\n" + BASE)).influx.gzip  # type: ignore[union-attr]
    gzip_on = load(tmp_path, influx + "gzip = true\n\n" + BASE)
    assert export_parts(gzip_on).influx.gzip  # type: ignore[union-attr]
    assert problems(tmp_path, influx + 'gzip = "yes"\n\n' + BASE) == [
        'influxdb.gzip: must be true or false, got "yes"'
    ]


def test_unknown_keys(tmp_path: Path) -> None:
    text = "[daemon]\ncolour = true\n\n" + BASE + "prot = 5\n"
    assert problems(tmp_path, text) == [
        "daemon.colour: unknown key",
        "plants[0].devices[0].prot: unknown key",
    ]


def test_bad_duration(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + 'poll_interval = "10 sec"\n') == [
        'plants[0].devices[0].poll_interval: not a duration: "10 sec" '
        "(use 500ms, 10s, 5m, 1h, 400d)"
    ]


def test_duplicate_device_id_across_plants(tmp_path: Path) -> None:
    text = BASE + SECOND_PLANT.replace('id = "inv9"', 'id = "inv1"')
    assert problems(tmp_path, text) == [
        'plants[1].energy_devices[0]: no device "inv9" in this plant',
        'plants[1].devices[0].id: duplicate device id "inv1" (also plants[0].devices[0])',
    ]


def test_energy_device_of_another_plant(tmp_path: Path) -> None:
    text = BASE + SECOND_PLANT.replace('energy_devices = ["inv9"]', 'energy_devices = ["inv1"]')
    assert problems(tmp_path, text) == [
        'plants[1].energy_devices[0]: "inv1" is a device of plants[0], not of this plant'
    ]


def test_energy_device_without_energy_field(tmp_path: Path) -> None:
    text = (
        "[mqtt]\n\n"
        + BASE.replace('["inv1"]', '["inv1", "meter1", "inv1"]')
        + MQTT_DEVICE.replace("fields.energy_wh", "fields.power_w").replace("kWh", "W")
    )
    assert problems(tmp_path, text) == [
        'plants[0].energy_devices[1]: device "meter1" has no energy_wh field',
        'plants[0].energy_devices[2]: "inv1" is listed twice',
    ]


def test_missing_required_keys(tmp_path: Path) -> None:
    text = BASE.replace("capacity_kw = 100\n", "").replace('symbol = "SLR"\n', "")
    # a missing key sorts after the keys present in its table
    assert problems(tmp_path, text) == [
        "plants[0].reward.symbol: required",
        "plants[0].capacity_kw: required",
    ]
    assert problems(tmp_path, "[daemon]\n") == ["plants: required"]


@pytest.mark.parametrize(
    ("reward", "line"),
    [
        (
            'tokens_per_mwh = "0.001"\ndecimals = 2',
            "plants[0].reward.tokens_per_mwh: 0.001 × 10^2 is not a whole number of units "
            "(at most 2 decimal places, or raise decimals)",
        ),
        ('tokens_per_mwh = "1"\ndecimals = 19', "plants[0].reward.decimals: must be 0..18, got 19"),
        (
            'tokens_per_mwh = "0"',
            "plants[0].reward.tokens_per_mwh: must be > 0 and ≤ 10^18 with at most 18 decimal "
            "places, got 0",
        ),
        (
            'tokens_per_mwh = "abc"',
            'plants[0].reward.tokens_per_mwh: must be a decimal number, got "abc"',
        ),
    ],
)
def test_bad_reward_amounts(tmp_path: Path, reward: str, line: str) -> None:
    assert problems(tmp_path, BASE.replace('tokens_per_mwh = "1"', reward)) == [line]


def test_tokens_per_mwh_accepts_numbers_and_strings(tmp_path: Path) -> None:
    config = load(
        tmp_path, BASE.replace('tokens_per_mwh = "1"', "tokens_per_mwh = 0.5\ndecimals = 1")
    )
    assert config.plants[0].reward.tokens_per_mwh == Decimal("0.5")
    assert config.plants[0].reward.units_per_mwh == 5
    config = load(
        tmp_path,
        BASE.replace('"1"', '"0.000000000000000001"').replace(
            "[plants.reward]", "[plants.reward]\ndecimals = 18"
        ),
    )
    assert config.plants[0].reward.units_per_mwh == 1


def test_bad_timezone(tmp_path: Path) -> None:
    text = BASE.replace('id = "p1"', 'id = "p1"\ntimezone = "Europe/Pariss"')
    assert problems(tmp_path, text) == [
        'plants[0].timezone: unknown timezone "Europe/Pariss" (an IANA name such as Europe/Paris)'
    ]


def test_bad_plant_id(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE.replace('"p1"', '"Brasse Monte"')) == [
        'plants[0].id: must match [a-z0-9_-]{1,64}, got "Brasse Monte"'
    ]


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "port = \n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.problems == [f"{path}: line 14, column 8: invalid TOML: Invalid value"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_custom_profile_without_registers(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + 'profile = "custom"\n') == [
        'plants[0].energy_devices[0]: device "inv1" has no energy_wh field',
        'plants[0].devices[0].registers: required with profile = "custom"',
    ]


def test_registers_with_sunspec_profile(tmp_path: Path) -> None:
    text = BASE + 'registers = [{ field = "energy_wh", address = 1, type = "u32" }]\n'
    assert problems(tmp_path, text) == [
        'plants[0].devices[0].registers: only allowed with profile = "custom"'
    ]


def test_rtu_without_serial_port(tmp_path: Path) -> None:
    text = BASE.replace('host = "10.0.0.1"', 'transport = "rtu"')
    assert problems(tmp_path, text) == [
        'plants[0].devices[0].serial_port: required with transport = "rtu"'
    ]


def test_devices_on_one_serial_line_must_share_its_settings(tmp_path: Path) -> None:
    rtu = 'transport = "rtu"\nserial_port = "/dev/ttyUSB0"'
    text = BASE.replace('host = "10.0.0.1"', rtu) + (
        f'\n[[plants.devices]]\nid = "m2"\nprotocol = "modbus"\n{rtu}\nunit_id = 2\n'
        'baudrate = 19200\nparity = "E"\n'
        f'\n[[plants.devices]]\nid = "m3"\nprotocol = "modbus"\n{rtu}\nunit_id = 3\n'
    )
    assert problems(tmp_path, text) == [
        "plants[0].devices[1].baudrate: 19200 on serial line /dev/ttyUSB0, where "
        "plants[0].devices[0] uses 9600: devices on one line must share its settings",
        'plants[0].devices[1].parity: "E" on serial line /dev/ttyUSB0, where '
        'plants[0].devices[0] uses "N": devices on one line must share its settings',
    ]


def test_one_tcp_endpoint_speaks_one_framing(tmp_path: Path) -> None:
    text = BASE + SECOND_PLANT.replace(
        'host = "10.0.0.9"', 'host = "10.0.0.1"\ntransport = "rtu-over-tcp"\nunit_id = 4'
    )
    assert problems(tmp_path, text) == [
        'plants[1].devices[0].transport: "rtu-over-tcp" on 10.0.0.1:502, where '
        'plants[0].devices[0] uses "tcp": one TCP endpoint speaks one framing '
        "(Modbus TCP or RTU over TCP)"
    ]
    # Other ports of the same host are other endpoints.
    load(tmp_path, text.replace("unit_id = 4", "unit_id = 4\nport = 503"))


def test_bad_token_hash(tmp_path: Path) -> None:
    text = f'[api]\ntokens = [{{ name = "a", sha256 = "{HASH.upper()}" }}]\n\n' + BASE
    assert problems(tmp_path, text) == [
        f"api.tokens[0].sha256: must be 64 lowercase hex digits (the token's SHA-256), "
        f'got "{HASH.upper()}"'
    ]


def test_device_union_errors_name_the_device_key(tmp_path: Path) -> None:
    text = BASE + '\n[[plants.devices]]\nid = "x"\nprotocol = "udp"\n'
    text += '\n[[plants.devices]]\nid = "y"\n'
    text += '\n[[plants.devices]]\nid = "z"\nprotocol = "modbus"\nhost = "h"\nunit_id = 300\n'
    assert problems(tmp_path, text) == [
        'plants[0].devices[1].protocol: must be one of modbus, mqtt, got "udp"',
        "plants[0].devices[2].protocol: required",
        "plants[0].devices[3].unit_id: must be 0..247, got 300",
    ]


def test_mqtt_device_mistakes(tmp_path: Path) -> None:
    text = BASE + MQTT_DEVICE.replace("tele/meter1/SENSOR", "tele/#/x").replace("kWh", "W")
    text += 'qos = 3\nfields.Power = { path = "a..b" }\n'
    assert problems(tmp_path, text) == [
        "plants[0].devices[1].protocol: an MQTT device needs the [mqtt] table",
        "plants[0].devices[1].topic: '#' must be the whole last level, got \"tele/#/x\"",
        "plants[0].devices[1].fields.energy_wh.unit: energy_wh needs an energy unit "
        '(Wh, kWh, MWh), got "W"',
        'plants[0].devices[1].fields.Power: must match [a-z][a-z0-9_]*, got "Power"',
        'plants[0].devices[1].fields.Power.path: must be keys joined by dots, or "" for the '
        'whole payload, got "a..b"',
        "plants[0].devices[1].qos: must be one of 0, 1, 2, got 3",
    ]


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("100", "must be 1024..16777216, got 100"),
        ("16777217", "must be 1024..16777216, got 16777217"),
        ('"64KiB"', 'must be an integer, got "64KiB"'),
        ("65536.0", "must be an integer, got 65536.0"),
    ],
)
def test_mqtt_max_packet_size_range(tmp_path: Path, value: str, line: str) -> None:
    assert problems(tmp_path, BASE + f"[mqtt]\nmax_packet_size = {value}\n") == [
        f"mqtt.max_packet_size: {line}"
    ]


def test_mqtt_max_packet_size_reaches_the_subscriber(tmp_path: Path) -> None:
    default = load(tmp_path, BASE + MQTT_DEVICE + "[mqtt]\n")
    assert default.mqtt is not None
    assert default.mqtt.max_packet_size == 65536
    parts = mqtt_parts(load(tmp_path, BASE + MQTT_DEVICE + "[mqtt]\nmax_packet_size = 4096\n"))
    assert parts is not None
    assert parts.link.max_packet_size == 4096


def test_several_problems_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        '[daemon]\nlog_level = "loud"\n\n[storage]\nraw_retention = "soon"\n\n'
        + BASE.replace("capacity_kw = 100", "capacity_kw = -1")
        + "port = 0\nretries = 11\n"
        + '\n[platform]\npush_url = "ftp://x"\n'
    )
    assert problems(tmp_path, text) == [
        'daemon.log_level: must be one of debug, info, warning, error, got "loud"',
        'storage.raw_retention: not a duration: "soon" (use 500ms, 10s, 5m, 1h, 400d)',
        "plants[0].capacity_kw: must be > 0 and ≤ 10^7 with at most 3 decimal places, got -1",
        "plants[0].devices[0].port: must be 1..65535, got 0",
        "plants[0].devices[0].retries: must be 0..10, got 11",
        'platform.push_url: must be a http:// or https:// URL naming a host, got "ftp://x"',
        "platform.secret_file: required: the file holding the platform secret "
        "(or $HELIOD_PLATFORM_SECRET)",
    ]


# --- where the file is, relative paths, secrets ---------------------------------------


def test_config_path_resolution(tmp_path: Path) -> None:
    explicit, from_env = write(tmp_path, BASE, "a.toml"), write(tmp_path, BASE, "b.toml")
    env = {"HELIOD_CONFIG": str(from_env)}
    assert config_path(explicit, env) == explicit
    assert config_path(None, env) == from_env
    assert config_path(None, {"HELIOD_CONFIG": ""}) == DEFAULT_PATH
    assert config_path(None, {}) == Path("/etc/heliod/heliod.toml")
    assert load_config(None, env=env).path == from_env
    assert load_config(explicit, env=env).path == explicit


def test_state_dir_and_database_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert config.daemon.state_dir == tmp_path / "var"
    assert config.storage.url == f"sqlite:///{tmp_path}/var/heliod.db"
    config = load(tmp_path, BASE, env={"STATE_DIRECTORY": "/var/lib/heliod:/var/lib/other"})
    assert config.daemon.state_dir == Path("/var/lib/heliod")
    assert config.storage.url == "sqlite:////var/lib/heliod/heliod.db"
    config = load(
        tmp_path, '[daemon]\nstate_dir = "st"\n[storage]\nurl = "sqlite:///db/h.db"\n' + BASE
    )
    assert config.daemon.state_dir == tmp_path / "st"
    assert config.storage.url == f"sqlite:///{tmp_path}/db/h.db"
    pg = "postgresql+psycopg://heliod@db.local/heliod"
    assert load(tmp_path, f'[storage]\nurl = "{pg}"\n' + BASE).storage.url == pg
    assert problems(tmp_path, '[storage]\nurl = "postgresql+psycopg://u:pw@h/db"\n' + BASE) == [
        "storage.url: must not contain a password: use PGPASSWORD or a passfile"
    ]


SECRET_TABLES = (
    '[mqtt]\nurl = "mqtts://broker.local"\nusername = "gw"\npassword_file = "mqtt.pw"\n'
    'ca_file = "ca.pem"\n\n[platform]\npush_url = "https://p.example/e"\n'
    'secret_file = "platform.secret"\n\n'
)


def test_secrets_from_env_then_file(tmp_path: Path) -> None:
    (tmp_path / "platform.secret").write_text("s3cret-from-file\n", encoding="utf-8")
    config = load(tmp_path, SECRET_TABLES + BASE, env={"HELIOD_MQTT_PASSWORD": "pw-from-env"})
    assert config.secret("mqtt.password") == "pw-from-env"
    assert config.secret("platform.secret") == "s3cret-from-file"
    assert config.secret("influxdb.token") is None  # no [influxdb]: no export, no token
    assert "pw-from-env" not in repr(config)
    assert "pw-from-env" not in str(config)
    assert config.mqtt is not None
    assert config.mqtt.ca_file == tmp_path / "ca.pem"
    assert (config.mqtt.port, config.mqtt.tls) == (8883, True)
    (tmp_path / "platform.secret").unlink()
    with pytest.raises(ConfigError) as caught:
        config.secret("platform.secret")
    missing = tmp_path / "platform.secret"
    assert caught.value.problems == [
        f"platform.secret_file: cannot read {missing}: No such file or directory"
    ]
    with pytest.raises(ValueError, match="unknown secret"):
        config.secret("api.token")


def test_secret_files_from_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt.pw").write_text("from-systemd", encoding="utf-8")
    (tmp_path / "mqtt.pw").write_text("beside-the-config\n", encoding="utf-8")
    (tmp_path / "platform.secret").write_text("s3cret\n", encoding="utf-8")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    config = load(tmp_path, SECRET_TABLES + BASE, env=env)
    assert config.secret("mqtt.password") == "from-systemd"
    assert config.platform is not None
    assert config.platform.secret_file == tmp_path / "platform.secret"  # not a credential
    assert load(tmp_path, SECRET_TABLES + BASE).secret("mqtt.password") == "beside-the-config"


# --- times and numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    ['"2020-06-01T00:00:00"', "2020-06-01T00:00:00", '"2020-06-01"', "2020-06-01"],
)
def test_start_without_offset_is_in_plant_timezone(tmp_path: Path, start: str) -> None:
    text = BASE.replace('id = "p1"', 'id = "p1"\ntimezone = "Europe/Paris"')
    text = text.replace('tokens_per_mwh = "1"', f'tokens_per_mwh = "1"\nstart = {start}')
    start_utc = load(tmp_path, text).plants[0].reward.start
    assert start_utc == datetime(2020, 5, 31, 22, tzinfo=UTC)  # CEST is UTC+2
    assert start_utc is not None
    assert start_utc.tzinfo is UTC


def test_start_with_offset_and_default(tmp_path: Path) -> None:
    text = BASE.replace(
        'tokens_per_mwh = "1"', 'tokens_per_mwh = "1"\nstart = "2020-06-01T00:00:00+05:00"'
    )
    assert load(tmp_path, text).plants[0].reward.start == datetime(2020, 5, 31, 19, tzinfo=UTC)
    assert load(tmp_path, BASE).plants[0].reward.start is None


def test_toml_floats_arrive_as_exact_decimals(tmp_path: Path) -> None:
    text = BASE.replace("capacity_kw = 100", "capacity_kw = 0.1\nmax_overload = 1.15")
    text = text.replace('host = "10.0.0.1"', 'host = "10.0.0.1"\nprofile = "custom"')
    text += (
        'registers = [{ field = "energy_wh", address = 0, type = "u32", scale = 0.1, '
        'unit = "kWh" },'
        ' { field = "power_w", address = 2, type = "f32", scale = "0.001", unit = "kW" }]\n'
    )
    plant = load(tmp_path, text).plants[0]
    assert plant.capacity_kw == Decimal("0.1")
    assert str(plant.capacity_kw) == "0.1"
    assert plant.max_overload == Decimal("1.15")
    device = plant.devices[0]
    assert isinstance(device, ModbusDevice)
    energy, power = device.registers
    assert energy.scale == Decimal("0.1")
    assert power.scale == Decimal("0.001")
    assert energy.counter_range_wh == Decimal(2**32) * 100  # 2^32 × 0.1 × 1000 Wh
    assert power.counter_range_wh is None  # floats do not wrap


def test_parse_duration() -> None:
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("400d") == timedelta(days=400)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("", "10", "10 s", "1.5s", "-1s", "10sec"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


# --- profiles, listen addresses, conveniences ---------------------------------------


def test_profiles(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "mine.toml").write_text("", encoding="utf-8")
    device = load(tmp_path, BASE + 'profile = "maps/mine.toml"\n').plants[0].devices[0]
    assert isinstance(device, ModbusDevice)
    assert device.profile_file == tmp_path / "maps" / "mine.toml"
    assert problems(tmp_path, BASE + 'profile = "maps/other.toml"\n') == [
        f"plants[0].devices[0].profile: no profile file {tmp_path / 'maps' / 'other.toml'}"
    ]
    names = ", ".join(["sunspec", "custom", *shipped_profiles()])
    assert problems(tmp_path, BASE + 'profile = "nope"\n') == [
        f'plants[0].devices[0].profile: unknown profile "nope" (one of {names}, '
        "or a path to a .toml file)"
    ]


def test_shipped_profiles_are_accepted(tmp_path: Path) -> None:
    shipped = shipped_profiles()
    assert len(shipped) >= 5  # the issue asks for at least five real devices
    for name in shipped:
        device = load(tmp_path, BASE + f'profile = "{name}"\n').plants[0].devices[0]
        assert isinstance(device, ModbusDevice)
        assert device.profile_file is not None
        assert device.profile_file.read_text(encoding="utf-8")


def test_listen_addresses(tmp_path: Path) -> None:
    api = load(tmp_path, '[api]\nlisten = "[::1]:8080"\n' + BASE).api
    assert (api.host, api.port) == ("::1", 8080)
    assert problems(tmp_path, '[api]\nlisten = "[zz]:8080"\n' + BASE) == [
        'api.listen: must be "host:port" or "[ipv6]:port", got "[zz]:8080"'
    ]


def test_lookups(tmp_path: Path) -> None:
    config = load(tmp_path, "[mqtt]\n" + BASE + MQTT_DEVICE + SECOND_PLANT)
    assert [(p.id, d.id) for p, d in config.devices()] == [
        ("p1", "inv1"),
        ("p1", "meter1"),
        ("p2", "inv9"),
    ]
    plant, device = config.device("meter1")
    assert plant.id == "p1"
    assert isinstance(device, MqttDevice)
    assert device.expected_interval == timedelta(minutes=5)
    assert config.plant("p2").name == "p2"  # name defaults to the id
    assert config.energy_device_ids() == {"inv1", "inv9"}
    with pytest.raises(KeyError):
        config.device("nope")
    with pytest.raises(KeyError):
        config.plant("nope")


PLATFORM = '[platform]\npush_url = "https://p.example/e"\nsecret_file = "platform.secret"\n'


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://p.example/backers/{plant}", True),
        ("http://127.0.0.1:8000/backers/{plant}", True),
        ("http://127.8.9.10/backers/{plant}", True),
        ("http://localhost:8000/backers/{plant}", True),
        ("http://[::1]:8000/backers/{plant}", True),
        ("http://p.example/backers/{plant}", False),
        ("http://192.168.1.5/backers/{plant}", False),
        ("http://[fe80::1]/backers/{plant}", False),
        ("http://localhost.p.example/backers/{plant}", False),
        ("HTTP://10.0.0.1/backers/{plant}", False),
    ],
)
def test_backers_url_is_https_or_loopback(tmp_path: Path, url: str, accepted: bool) -> None:
    # Over plain http anyone on the path could rewrite who gets the tokens.
    (tmp_path / "platform.secret").write_text("s3cret\n", encoding="utf-8")
    text = PLATFORM + f'backers_url = "{url}"\n\n' + BASE
    if accepted:
        config = load(tmp_path, text)
        assert config.platform is not None
        assert config.platform.backers_url == url
    else:
        assert problems(tmp_path, text) == [
            "platform.backers_url: must be an https:// URL (http:// only for a loopback host: "
            f'localhost, 127.0.0.0/8, ::1), got "{url}"'
        ]
