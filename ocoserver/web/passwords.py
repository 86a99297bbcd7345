"""Password hashes of web console accounts: scrypt from the standard library.

A hash is stored as 'scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>', so the
parameters can be raised later without breaking the stored hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# scrypt cost parameters: n=2**15, r=8 takes 32 MiB of memory per hash.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    """Hash `password` with a new random salt and return the stored form.

    `n` is the scrypt CPU and memory cost; only tests lower it, for speed.
    """
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Return whether `password` matches a hash from `hash_password`."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(digest, bytes.fromhex(expected))


def check_new_password(password: str) -> None:
    """Raise ValueError naming the problem when `password` is unfit."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach Python as lone surrogates.
        raise ValueError(
            "password is not valid UTF-8 text; type it again in a UTF-8 terminal"
        ) from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"password is too short ({len(password)} characters): use at least "
            f"{MIN_PASSWORD_LENGTH}"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem must exceed 128 * n * r bytes, which OpenSSL's default of
    # 32 MiB does not leave room for.
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r,
        dklen=HASH_BYTES,
    )
