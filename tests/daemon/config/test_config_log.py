"""`[log]` (docs/configuration.md, "The log's signing key"): defaults, the systemd
credential, the origin prefix's rules, and the key's errors naming `log.signing_key_file`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from heliod.daemon.boot.settings import log_signer
from heliod.daemon.config import ConfigError, load_config
from tests.daemon.config.test_config import BASE, EXAMPLE, load, problems


def test_defaults_key_in_state_dir_and_prefix_heliod(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert config.log.signing_key_file == tmp_path / "var" / "log-signing.pem"
    assert config.log.origin_prefix == "heliod"
    assert config.log.origin("p1") == "heliod/p1"
    example = load_config(EXAMPLE, env={"HELIOD_PLATFORM_SECRET": "s"})
    assert example.log.signing_key_file == EXAMPLE.parent / "var" / "log-signing.pem"


def test_state_directory_of_systemd_and_a_credential(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = load(tmp_path, BASE, env={"STATE_DIRECTORY": str(state)})
    assert config.log.signing_key_file == state / "log-signing.pem"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    env = {"STATE_DIRECTORY": str(state), "CREDENTIALS_DIRECTORY": str(credentials)}
    # No credential of that name: the state directory's file.
    assert load(tmp_path, BASE, env=env).log.signing_key_file == state / "log-signing.pem"
    (credentials / "log-signing.pem").write_text("given by systemd")
    assert load(tmp_path, BASE, env=env).log.signing_key_file == credentials / "log-signing.pem"
    (credentials / "gw.pem").write_text("named")
    named = load(tmp_path, '[log]\nsigning_key_file = "gw.pem"\n' + BASE, env=env)
    assert named.log.signing_key_file == credentials / "gw.pem"


def test_a_relative_file_is_beside_the_configuration(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[log]\nsigning_key_file = "keys/log.pem"\norigin_prefix = "sol.example.org/heliod"\n'
        + BASE,
    )
    assert config.log.signing_key_file == tmp_path / "keys" / "log.pem"
    assert config.log.origin("p1") == "sol.example.org/heliod/p1"


@pytest.mark.parametrize(
    "prefix",
    [
        '""',
        '"a b"',
        '"a+b"',
        '"/heliod"',
        '"heliod/"',
        '"hé"',
        '"a\\tb"',
        "7",
        '"' + "x" * 129 + '"',
    ],
)
def test_origin_prefix_is_a_key_name(tmp_path: Path, prefix: str) -> None:
    (line,) = problems(tmp_path, f"[log]\norigin_prefix = {prefix}\n" + BASE)
    assert line.startswith("log.origin_prefix: must be")


def test_unknown_log_key_is_named(tmp_path: Path) -> None:
    assert problems(tmp_path, '[log]\nkey_file = "x"\n' + BASE) == ["log.key_file: unknown key"]


def test_log_signer_creates_the_key_and_names_the_key_path_on_errors(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    path = tmp_path / "var" / "log-signing.pem"
    with pytest.raises(ConfigError) as caught:
        log_signer(config, create=False)
    assert caught.value.problems == [
        f"log.signing_key_file: cannot read {path}: No such file or directory"
    ]
    signer = log_signer(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert log_signer(config).key.public_key == signer.key.public_key
    assert signer.origin("p1") == "heliod/p1"
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    config = load(tmp_path, '[log]\nsigning_key_file = "bad.pem"\n' + BASE)
    with pytest.raises(ConfigError) as caught:
        log_signer(config)
    (line,) = caught.value.problems
    assert line.startswith(f"log.signing_key_file: {bad}: not a PEM private key")


def test_check_config_neither_reads_nor_creates_the_key(tmp_path: Path) -> None:
    load(tmp_path, BASE)
    assert not (tmp_path / "var" / "log-signing.pem").exists()
