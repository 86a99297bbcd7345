"""The server's password key file and the at-rest encryption of passwords.

Rotated local admin passwords are stored with AES-256-GCM under a random
256-bit key kept in its own file, `<data_dir>/password.key`, so a copy of
the database alone does not reveal them. The file contains the key as 64 hex
digits and a newline. It is created with mode 0600 on first use and must
stay unreadable by group and others; losing it makes every stored password
unreadable, so back it up separately from the database.

Each stored value is a random 96-bit nonce followed by the GCM ciphertext
and tag. The computer id and username are bound to it as associated data,
so a ciphertext copied to another row fails to decrypt.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("ocoserver.passwordkey")

KEY_BYTES = 32
NONCE_BYTES = 12


class PasswordKeyError(Exception):
    """The password key file is missing, unsafe or not the key in use."""


def load_key(path: Path) -> bytes:
    """Read the key from an existing key file, checking its permissions.

    Raises PasswordKeyError when the file is missing, readable or writable
    by group or others, or does not contain a key.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise PasswordKeyError(
            f"password key file {path} not found; stored passwords cannot be "
            "decrypted without it, so restore it from a backup"
        ) from None

    with os.fdopen(fd, "rb") as file:
        _check_permissions(path, os.fstat(file.fileno()))
        content = file.read()

    return _parse_key(path, content)


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, or create it with a new random key when missing."""
    if not path.exists():
        _create_key_file(path)
    return load_key(path)


def _check_permissions(path: Path, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise PasswordKeyError(f"password key file {path} is not a regular file")
    if status.st_mode & 0o077:
        mode = stat.S_IMODE(status.st_mode)
        raise PasswordKeyError(
            f"password key file {path} has mode {mode:04o}, so group or others "
            f"can access it; run 'chmod 600 {path}'"
        )


def _parse_key(path: Path, content: bytes) -> bytes:
    try:
        key = bytes.fromhex(content.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise PasswordKeyError(
            f"password key file {path} is invalid: expected {KEY_BYTES * 2} hex "
            "digits; restore the file from a backup"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Create the key file atomically, keeping a file another process created.

    The key is written to a temporary file, which is then hard-linked to the
    final name. A link never replaces an existing file, so a concurrent
    creator cannot leave a half-written or overwritten key behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    content = secrets.token_bytes(KEY_BYTES).hex().encode("ascii") + b"\n"

    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return
    finally:
        temporary.unlink(missing_ok=True)

    log.info("created password key file %s; back it up with the database", path)


def _associated_data(computer_id: int, username: str) -> bytes:
    return f"{computer_id}\0{username}".encode()


def encrypt(key: bytes, computer_id: int, username: str, password: str) -> bytes:
    """Encrypt a password for storage: nonce followed by GCM ciphertext."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(
        nonce, password.encode("utf-8"), _associated_data(computer_id, username)
    )
    return nonce + ciphertext


def decrypt(key: bytes, computer_id: int, username: str, stored: bytes) -> str:
    """Decrypt a stored password, raising PasswordKeyError on a wrong key."""
    nonce, ciphertext = stored[:NONCE_BYTES], stored[NONCE_BYTES:]
    try:
        plain = AESGCM(key).decrypt(
            nonce, ciphertext, _associated_data(computer_id, username)
        )
    except InvalidTag:
        raise PasswordKeyError(
            f"a stored password of user {username!r} on computer id {computer_id} "
            "does not decrypt with the password key file; restore the key file "
            "the password was stored with"
        ) from None
    return plain.decode("utf-8")


def matches(key: bytes, computer_id: int, username: str, stored: bytes,
            password: str) -> bool:
    """Tell whether a stored password equals `password`, in constant time."""
    plain = decrypt(key, computer_id, username, stored)
    return hmac.compare_digest(plain.encode("utf-8"), password.encode("utf-8"))
