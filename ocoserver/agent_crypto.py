"""Decryption of the passwords agents report in `oco.agent.passwords`.

OCO agents from 1.1.7 on encrypt a rotated password before sending it
(function `encrypt` in the agent's oco_agent/oco_agent.py):
AES-256-CBC with PKCS#7 padding and a random 16-byte IV, sent as
`{"iv": <base64>, "data": <base64>}`. The key is the first 32 characters
of the computer's agent key, NUL-padded to 32 and encoded as UTF-8.
Agent keys issued by this server are 32 ASCII characters, so the key is the
agent key's bytes. CBC carries no integrity check of its own. Generation 2
requests are protected by the request signature instead.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
BLOCK_BYTES = 16


class AgentCryptoError(ValueError):
    """A reported password cannot be decoded or decrypted."""


def agent_cipher_key(agent_key: str) -> bytes:
    """Derive the AES-256 key an agent uses from its agent key.

    The agent pads the first 32 characters with NUL characters and then
    encodes them as UTF-8. For an ASCII key that equals encoding first and
    padding the bytes. A key with non-ASCII characters gives the agent
    more than 32 bytes, which its AES library rejects, so such an agent
    cannot report passwords at all. Here the bytes are cut to 32.
    """
    encoded = agent_key[:KEY_BYTES].encode("utf-8")
    return encoded.ljust(KEY_BYTES, b"\0")[:KEY_BYTES]


def decrypt_reported(value: Any, agent_key: str) -> str:
    """Return the plain text of a reported `password` value.

    `value` is either a plain string (sent as is) or the agent's encrypted
    object. Raises AgentCryptoError saying what is wrong with it.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise AgentCryptoError(
            f"password must be a string or an object with iv and data, "
            f"not {type(value).__name__}"
        )

    iv = _decode_base64(value, "iv")
    data = _decode_base64(value, "data")
    if len(iv) != BLOCK_BYTES:
        raise AgentCryptoError(f"password iv is {len(iv)} bytes, expected {BLOCK_BYTES}")
    if not data or len(data) % BLOCK_BYTES:
        raise AgentCryptoError(
            f"password data is {len(data)} bytes, not a positive multiple of "
            f"{BLOCK_BYTES}"
        )

    padded = _decrypt_cbc(agent_cipher_key(agent_key), iv, data)
    return _unpad_and_decode(padded)


def _decode_base64(value: dict[str, Any], field: str) -> bytes:
    text = value.get(field)
    if not isinstance(text, str):
        raise AgentCryptoError(f"password {field} is missing or not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise AgentCryptoError(f"password {field} is not valid base64") from None


def _decrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _unpad_and_decode(padded: bytes) -> str:
    """Strip PKCS#7 padding and decode UTF-8.

    A wrong key almost always shows up here as invalid padding or text.
    """
    unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise AgentCryptoError(
            "password does not decrypt with the agent key (invalid padding)"
        ) from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise AgentCryptoError(
            "password does not decrypt with the agent key (not UTF-8 text)"
        ) from None
