"""Built-in HTTPS: certificate checks and a hello over TLS to a real process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from ocoserver.cli import main as cli_main
from ocoserver.config import ConfigError, ServerConfig
from ocoserver.server import agent_url
from ocoserver.tls import server_context
from tests.conftest import load_fixture
from tests.test_server_process import free_port, wait_for_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Files:
    """A certificate authority and PEM files written into a test directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root = trustme.CA()
        intermediate = self.root.create_child_ca()
        self.leaf = intermediate.issue_cert("127.0.0.1", "localhost")
        self.cert = folder / "chain.pem"
        self.key = folder / "key.pem"
        # The full chain: server certificate first, then the intermediate.
        for blob in self.leaf.cert_chain_pems:
            blob.write_to_path(str(self.cert), append=True)
        self.leaf.private_key_pem.write_to_path(str(self.key))
        self.key.chmod(0o600)

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.root.configure_trust(context)
        return context


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def server(cert: Path | str, key: Path | str) -> ServerConfig:
    return ServerConfig(tls_cert=str(cert), tls_key=str(key))


def test_context_modern_settings(files):
    context = server_context(server(files.cert, files.key))

    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    names = [cipher["name"] for cipher in context.get_ciphers()]
    assert not [name for name in names if "RC4" in name or "3DES" in name]


def test_agent_url_scheme_follows_tls():
    assert agent_url("127.0.0.1", 8443, https=True) == "https://127.0.0.1:8443/api-agent.php"
    assert agent_url("::1", 8080) == "http://[::1]:8080/api-agent.php"


def test_context_absent_without_files():
    assert server_context(ServerConfig()) is None


def test_context_key_mode_warned(files, caplog):
    files.key.chmod(0o644)

    server_context(server(files.cert, files.key))

    assert f"TLS private key {files.key} can be read by other users" in caplog.text


def bad_files(files: Files, case: str) -> tuple[Path | str, Path | str]:
    other = trustme.CA().issue_cert("127.0.0.1")
    if case == "missing-cert":
        return files.folder / "nowhere.pem", files.key
    if case == "missing-key":
        return files.cert, files.folder / "nowhere.pem"
    if case == "directory-cert":
        return files.folder, files.key
    if case == "not-pem-cert":
        return files.write("text.pem", b"hello\n"), files.key
    if case == "not-pem-key":
        return files.cert, files.write("text.pem", b"hello\n")
    if case == "only-cert":
        return files.cert, ""
    if case == "only-key":
        return "", files.key
    if case == "mismatched-key":
        return files.cert, files.write("other.pem", other.private_key_pem.bytes())
    if case == "intermediate-first":
        pems = [blob.bytes() for blob in files.leaf.cert_chain_pems]
        return files.write("reversed.pem", pems[1] + pems[0]), files.key
    if case == "encrypted-key":
        key = serialization.load_pem_private_key(
            files.leaf.private_key_pem.bytes(), password=None
        )
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        return files.cert, files.write("encrypted.pem", data)
    raise AssertionError(case)


BAD_FILES = {
    "missing-cert": "nowhere.pem not found",
    "missing-key": "server.tls_key file",
    "directory-cert": "cannot be read: Is a directory",
    "not-pem-cert": "contains no PEM certificate",
    "not-pem-key": "contains no PEM private key",
    "only-cert": "server.tls_cert is set but server.tls_key is not",
    "only-key": "server.tls_key is set but server.tls_cert is not",
    "mismatched-key": "does not match the certificate in",
    "intermediate-first": "does not start with the server certificate",
    "encrypted-key": "is encrypted with a passphrase",
}


@pytest.mark.parametrize(("case", "message"), BAD_FILES.items(), ids=BAD_FILES.keys())
def test_bad_files_named(files, case, message):
    cert, key = bad_files(files, case)

    with pytest.raises(ConfigError) as raised:
        server_context(server(cert, key))

    assert message in str(raised.value)


def test_cli_bad_cert_exits_before_start(files, tmp_path, capsys):
    data_dir = tmp_path / "data"

    code = cli_main([
        "--port", "0", "--data-dir", str(data_dir),
        "--tls-cert", str(tmp_path / "nowhere.pem"), "--tls-key", str(files.key),
    ])  # fmt: skip

    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("ocoserver: error: server.tls_cert file ")
    assert not data_dir.exists()


def post_https_hello(port: int, context: ssl.SSLContext) -> tuple[int, dict, str]:
    """Send a first hello over HTTPS; return status, payload and TLS version."""
    body = json.dumps(load_fixture("agent-1.1.6", "hello-first.json")).encode()
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=context, timeout=10
    )
    try:
        connection.request(
            "POST", "/api-agent.php", body, {"content-type": "application/json"}
        )
        response = connection.getresponse()
        version = connection.sock.version()
        return response.status, json.loads(response.read()), version
    finally:
        connection.close()


def test_process_serves_hello_over_https(files, tmp_path):
    data_dir = tmp_path / "data"
    assert cli_main(["computer", "add", "lab-pc-01", "--data-dir", str(data_dir)]) == 0
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ocoserver", "--port", str(port),
         "--data-dir", str(data_dir), "--tls-cert", str(files.cert),
         "--tls-key", str(files.key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )  # fmt: skip
    try:
        wait_for_port(port, process, timeout=20)
        status, payload, version = post_https_hello(port, files.client_context())
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)

    assert status == 200
    assert len(payload["result"]["params"]["agent-key"]) == 32
    assert version in ("TLSv1.2", "TLSv1.3")
    assert process.returncode == 0
    log = stderr.decode()
    assert f"agent api-url: https://127.0.0.1:{port}/api-agent.php" in log
    assert "serving HTTPS on 127.0.0.1" in log
