"""The log's signing key (adapters/signing.py): created once with mode 0600, never
overwritten, read back; every unreadable or malformed file refused with its reason."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from heliod.adapters.signing import SigningKey, SigningKeyError, load_signing_key, seed_of_pem
from tests.support import require_binary


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


def test_our_file_is_what_cryptography_and_openssl_read_and_write(tmp_path: Path) -> None:
    """The fixed PKCS#8 encoding read without cryptography is the one cryptography writes."""
    theirs = Ed25519PrivateKey.generate()
    pem = theirs.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw_public = theirs.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert seed_of_pem(pem) is not None
    path = tmp_path / "theirs.pem"
    path.write_bytes(pem)
    key = load_signing_key(path, create=False)
    assert key.public_key == raw_public
    assert key.pem() == pem  # written back byte for byte as cryptography (and OpenSSL) write it
    # Same key, same deterministic signature (RFC 8032) from both libraries.
    assert key.sign(b"checkpoint") == theirs.sign(b"checkpoint")
    ours = SigningKey.generate()
    loaded = serialization.load_pem_private_key(ours.pem(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert loaded.sign(b"x") == ours.sign(b"x")


def test_a_key_from_openssl_genpkey_is_read_without_cryptography(tmp_path: Path) -> None:
    path = tmp_path / "openssl.pem"
    openssl = require_binary("openssl")
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", path], check=True)
    assert seed_of_pem(path.read_bytes()) is not None
    key = load_signing_key(path, create=False)
    assert key.pem() == path.read_bytes()


def test_other_encodings_of_an_ed25519_key_are_read_through_cryptography(tmp_path: Path) -> None:
    """A key with its public key attached (PKCS#8 v2, RFC 8410's example) is not the fixed form."""
    seed = bytes(range(32))
    ref = SigningKey(seed)
    v2 = (
        bytes.fromhex("3051020101300506032b657004220420")
        + seed
        + bytes.fromhex("812100")
        + ref.public_key
    )
    pem = b"-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(v2)
    assert seed_of_pem(pem) is None
    path = tmp_path / "v2.pem"
    path.write_bytes(pem)
    assert load_signing_key(path, create=False).public_key == ref.public_key
    # Wrapped at 64 columns, with CRLF and surrounding blank lines: still the fixed form.
    text = ref.pem().replace(b"\n", b"\r\n")
    assert seed_of_pem(b"\r\n" + text + b"\r\n") == seed


@pytest.mark.parametrize(
    "change",
    [
        lambda pem: pem.replace(b"\n-----END", b"\n\n-----END"),  # a blank line inside
        lambda pem: pem.replace(b"\n-----END", b"=\n-----END"),  # padding that is not there
        lambda pem: pem.replace(b"\n", b"\r"),  # lone carriage returns
        lambda pem: pem.replace(pem[28:60], pem[28:44] + b"\n" + pem[44:60]),  # wrapped
    ],
)
def test_only_openssl_s_exact_layout_is_read_directly(change: object, tmp_path: Path) -> None:
    """Anything but OpenSSL's own layout of the fixed form goes to cryptography, which
    reads a key file as `openssl pkey` does (and may refuse it)."""
    pem = SigningKey(bytes(range(32))).pem()
    assert seed_of_pem(pem) == bytes(range(32))
    assert seed_of_pem(change(pem)) is None  # type: ignore[operator]


def test_a_daemon_s_key_is_loaded_without_importing_cryptography(tmp_path: Path) -> None:
    """Its 7 MB of bindings are loaded only for a key file not in the fixed form."""
    path = tmp_path / "log-signing.pem"
    load_signing_key(path, create=True)
    code = (
        "import sys\n"
        "import heliod.daemon.boot.build\n"
        "from heliod.adapters.signing import load_signing_key\n"
        f"load_signing_key(__import__('pathlib').Path({str(path)!r}), create=False)\n"
        "print('cryptography' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


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
    ed = serialization.load_pem_private_key(SigningKey.generate().pem(), password=None)
    locked.write_bytes(
        ed.private_bytes(
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
