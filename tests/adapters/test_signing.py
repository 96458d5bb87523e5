"""The log's signing key (adapters/signing.py): created once with mode 0600, never
overwritten, read back; every unreadable or malformed file refused with its reason."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from heliod.adapters.signing import SigningKey, SigningKeyError, load_signing_key


def test_created_at_first_use_with_mode_0600_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "log-signing.pem"
    key = load_signing_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["log-signing.pem"]  # no temp left
    again = load_signing_key(path, create=True)  # never overwritten
    assert again.public_key == key.public_key
    assert load_signing_key(path, create=False).public_key == key.public_key
    # The signature is a real Ed25519 signature under the public key.
    signature = key.sign(b"heliod/p\n1\nroot\n")
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, b"heliod/p\n1\nroot\n")
    assert len(key.public_key) == 32
    assert len(signature) == 64


def test_a_key_made_with_openssl_format_is_used_as_it_is(tmp_path: Path) -> None:
    made = SigningKey.generate()
    path = tmp_path / "given.pem"
    path.write_bytes(made.pem())
    assert load_signing_key(path, create=True).public_key == made.public_key


def test_absent_without_create_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.pem"
    with pytest.raises(SigningKeyError, match=f"cannot read {path}: No such file"):
        load_signing_key(path, create=False)
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a PEM private key"),
        (b"not a key at all\n", "not a PEM private key"),
        (b"\xff\xfe\x00garbage", "not a PEM private key"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(SigningKeyError, match=reason):
        load_signing_key(path, create=True)
    assert path.read_bytes() == content  # a bad key is reported, never replaced


def test_other_algorithms_and_encrypted_keys_are_refused(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_signing_key(path, create=True)
    locked = tmp_path / "locked.pem"
    ed = SigningKey.generate()
    locked.write_bytes(
        ed._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(SigningKeyError, match="encrypted"):
        load_signing_key(locked, create=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    load_signing_key(path, create=True)
    path.chmod(0)
    with pytest.raises(SigningKeyError, match="Permission denied"):
        load_signing_key(path, create=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_it_cannot_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(SigningKeyError, match=r"cannot create .*Permission denied"):
            load_signing_key(folder / "k.pem", create=True)
    finally:
        folder.chmod(0o700)


def test_two_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(load_signing_key(path, create=True).public_key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_a_folder_in_place_of_the_key_or_of_its_folder_is_refused(tmp_path: Path) -> None:
    """The same refusals as a permission problem, testable as any user."""
    folder = tmp_path / "a-folder.pem"
    folder.mkdir()
    with pytest.raises(SigningKeyError, match=f"cannot read {folder}: Is a directory"):
        load_signing_key(folder, create=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SigningKeyError, match=r"cannot create .*file is not a folder"):
        load_signing_key(blocker / "k.pem", create=True)
