"""HTTPS: the server's TLS context, built from PEM files named in the config.

The certificate file may contain the full chain: the server certificate
first, then its intermediate certificates, which are sent to clients with
it. The files are checked with `cryptography` before OpenSSL loads them,
because OpenSSL reports a wrong file only as "PEM lib" or "key values
mismatch" without naming the file.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)

from ocoserver.config import ConfigError, ServerConfig

log = logging.getLogger("ocoserver.tls")


def server_context(server: ServerConfig) -> ssl.SSLContext | None:
    """Return the TLS context for `server.tls_cert`/`tls_key`, None for plain HTTP.

    Raises ConfigError naming the file and the fix when a file is missing,
    unreadable, not PEM, encrypted, or when key and certificate do not match.
    """
    if not server.tls_cert and not server.tls_key:
        return None
    if not server.tls_cert or not server.tls_key:
        given, missing = "tls_cert", "tls_key"
        if server.tls_key:
            given, missing = missing, given
        raise ConfigError(
            f"server.{given} is set but server.{missing} is not; set both "
            "(--tls-cert and --tls-key) or neither"
        )
    cert_path = Path(server.tls_cert)
    key_path = Path(server.tls_key)
    chain = _read_chain(cert_path)
    key = _read_key(key_path)
    _check_pair(chain, key, cert_path, key_path)
    _warn_about_files(chain[0], cert_path, key_path)
    return _build_context(cert_path, key_path)


def _read_file(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{key} file {path} not found") from None
    except OSError as error:
        raise ConfigError(
            f"{key} file {path} cannot be read: {error.strerror}; check the path "
            "and that the server's user may read it"
        ) from None


def _read_chain(path: Path) -> list[x509.Certificate]:
    data = _read_file(path, "server.tls_cert")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            f"server.tls_cert file {path} contains no PEM certificate; expected "
            "'-----BEGIN CERTIFICATE-----' blocks, server certificate first"
        ) from None


def _read_key(path: Path) -> PrivateKeyTypes:
    data = _read_file(path, "server.tls_key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password would be needed.
        raise ConfigError(
            f"server.tls_key file {path} is encrypted with a passphrase; store "
            "it unencrypted (for example 'openssl pkey -in KEY -out KEY.plain') "
            "and make it readable by the server's user only"
        ) from None
    except ValueError:
        raise ConfigError(
            f"server.tls_key file {path} contains no PEM private key; expected "
            "a '-----BEGIN PRIVATE KEY-----' block"
        ) from None


def _public_bytes(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_pair(
    chain: list[x509.Certificate],
    key: PrivateKeyTypes,
    cert_path: Path,
    key_path: Path,
) -> None:
    key_public = _public_bytes(key.public_key())
    if _public_bytes(chain[0].public_key()) == key_public:
        return
    if any(_public_bytes(cert.public_key()) == key_public for cert in chain[1:]):
        raise ConfigError(
            f"server.tls_cert file {cert_path} does not start with the server "
            f"certificate that matches {key_path}; put the server certificate "
            "first and its intermediates after it"
        )
    raise ConfigError(
        f"server.tls_key file {key_path} does not match the certificate in "
        f"{cert_path}; use the key the certificate was issued for"
    )


def _warn_about_files(
    certificate: x509.Certificate, cert_path: Path, key_path: Path
) -> None:
    expires = certificate.not_valid_after_utc
    if expires < datetime.datetime.now(datetime.UTC):
        log.warning(
            "TLS certificate %s expired on %s; agents will reject the connection",
            cert_path, expires.isoformat(),
        )
    mode = key_path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning(
            "TLS private key %s can be read by other users (mode %03o); run "
            "'chmod 600 %s'",
            key_path, mode, key_path,
        )


def _build_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    # PROTOCOL_TLS_SERVER starts from Python's default cipher list (3.10 and
    # later): forward-secret ECDHE and DHE suites only, AES-GCM and
    # ChaCha20-Poly1305 first, no SHA-1, RC4 or 3DES.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as error:
        raise ConfigError(
            f"OpenSSL rejected server.tls_cert {cert_path} with server.tls_key "
            f"{key_path}: {error.reason or error}"
        ) from None
    return context
