"""The gateway's Ed25519 key, which signs each plant's log checkpoints (docs/verification.md).

The key is a PEM file (PKCS#8, unencrypted), created once with mode 0600 when it is
absent and never overwritten: a new key would make every checkpoint the platform and
the backers hold unverifiable against the one they were given. Under systemd it can be
handed over read-only in `$CREDENTIALS_DIRECTORY` (docs/configuration.md, `[log]`).

Signing is PyNaCl's (libsodium), which the daemon keeps loaded for every mint: 1 MB of
memory where cryptography's bindings take 7 MB (docs/performance.md, "Daemon memory").
The PKCS#8 encoding of an Ed25519 key is fixed (RFC 8410: 16 bytes, then the 32-byte
seed), as heliod and `openssl genpkey -algorithm ed25519` write it, and is read here
directly; any other file (a key with its public key attached, another algorithm, an
encrypted key, not PEM at all) goes to cryptography, imported then only, which reads it
or says what it is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import stat
from pathlib import Path

import nacl.signing

from heliod.adapters.errors import PermanentError

log = logging.getLogger("heliod.signing")

_MAX_BYTES = 64 * 1024  # a PEM Ed25519 key is 119 bytes; anything this large is not one
# PrivateKeyInfo v1 { version 0, AlgorithmIdentifier { id-Ed25519 }, OCTET STRING { seed } }
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PEM_BEGIN = b"-----BEGIN PRIVATE KEY-----"
_FIXED_PEM = re.compile(  # OpenSSL's layout: 48 bytes of DER are one 64-character line
    rb"-----BEGIN PRIVATE KEY-----\r?\n([A-Za-z0-9+/]{64})\r?\n-----END PRIVATE KEY-----"
)
_PEM_END = b"-----END PRIVATE KEY-----"


class SigningKeyError(PermanentError):
    """The key file cannot be read, created or understood; the message says why."""


class SigningKey:
    """An Ed25519 private key: its 32-byte public key, and signatures with it."""

    def __init__(self, seed: bytes) -> None:
        self._private = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._private.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` (RFC 8032, pure Ed25519)."""
        return bytes(self._private.sign(message).signature)

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (tests and benches; the daemon uses `load_signing_key`)."""
        return cls(secrets.token_bytes(32))

    def pem(self) -> bytes:
        """The private key as the key file holds it (PKCS#8 PEM, as OpenSSL writes it)."""
        der = PKCS8_ED25519_PREFIX + bytes(self._private)
        return b"%s\n%s\n%s\n" % (_PEM_BEGIN, base64.b64encode(der), _PEM_END)


def seed_of_pem(data: bytes) -> bytes | None:
    """The 32-byte seed of a PEM Ed25519 key in the fixed PKCS#8 encoding, written as
    OpenSSL writes it (one line of 64 base64 characters), else None: any other file is
    left to cryptography's stricter reading."""
    found = _FIXED_PEM.fullmatch(data.strip())
    if found is None:
        return None
    try:
        der = base64.b64decode(found.group(1), validate=True)
    except binascii.Error:
        return None
    if len(der) != len(PKCS8_ED25519_PREFIX) + 32 or not der.startswith(PKCS8_ED25519_PREFIX):
        return None
    return der[len(PKCS8_ED25519_PREFIX) :]


def load_signing_key(path: Path, *, create: bool) -> SigningKey:
    """The key in `path`; with `create`, a new one is written there first when absent.

    Raises SigningKeyError naming the file and the reason: unreadable, not PEM, not an
    Ed25519 private key, or (with `create`) impossible to write.
    """
    if create and not path.exists():
        _create(path)
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise SigningKeyError(f"{path}: too large for an Ed25519 key file")
        data = path.read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read {path}: {e.strerror or e}") from None
    seed = seed_of_pem(data)
    if seed is None:
        seed = _seed_by_cryptography(path, data)
    _warn_if_open(path)
    return SigningKey(seed)


def _seed_by_cryptography(path: Path, data: bytes) -> bytes:
    """The seed of a key in any other encoding cryptography reads, or why it is not one."""
    # Imported here only: its bindings weigh 7 MB that a daemon would keep for its life.
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningKeyError(f"{path}: the key is encrypted; heliod needs it in clear") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{path}: not a PEM private key (expected an unencrypted PKCS#8 Ed25519 key, "
            "as `openssl genpkey -algorithm ed25519` writes)"
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 key ({type(private).__name__})")
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _create(path: Path) -> None:
    """Write a new key to `path` atomically, readable by its owner only; never overwrite.

    The key is written to a temporary file in the same folder, synced, then linked to its
    name: a crash leaves either no key file or a whole one, and a key file that appeared
    meanwhile (another heliod process starting) wins over ours.
    """
    key = SigningKey.generate()
    if path.parent.exists() and not path.parent.is_dir():
        raise SigningKeyError(f"cannot create {path}: {path.parent} is not a folder")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key.pem())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return  # another process made it first: use that one
            _sync_dir(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except OSError as e:
        raise SigningKeyError(f"cannot create {path}: {e.strerror or e}") from None
    log.warning(
        "created a new log signing key in %s: back it up (docs/verification.md, 'The key')", path
    )


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _warn_if_open(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s can be read by other users (mode %o): chmod 600 it", path, stat.S_IMODE(mode)
        )
