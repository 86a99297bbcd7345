"""`python -m ocoserver` as a real process on a free port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from ocoserver.cli import main as cli_main
from ocoserver.server import agent_url
from tests.conftest import load_fixture
from tests.server_process import free_port, wait_for_port


def post_hello(port: int) -> dict:
    body = json.dumps(load_fixture("agent-1.1.6", "hello-first.json")).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api-agent.php",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_process_serves_hello_and_stops(tmp_path: Path):
    data_dir = tmp_path / "data"
    assert cli_main(["computer", "add", "lab-pc-01", "--data-dir", str(data_dir)]) == 0
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ocoserver", "--port", str(port),
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process, timeout=20)
        payload = post_hello(port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)

    assert len(payload["result"]["params"]["agent-key"]) == 32
    assert process.returncode == 0
    log = stderr.decode()
    assert f"agent api-url: http://127.0.0.1:{port}/api-agent.php" in log
    assert "ocoserver stopped" in log
    assert (data_dir / "ocoserver.sqlite3").is_file()
    assert (data_dir / "depot").is_dir()


def test_agent_url_names_host_for_wildcard():
    assert agent_url("0.0.0.0", 8080) == f"http://{socket.getfqdn()}:8080/api-agent.php"
    assert agent_url("::", 443, https=True) == f"https://{socket.getfqdn()}:443/api-agent.php"
    assert agent_url("::1", 8080) == "http://[::1]:8080/api-agent.php"


def test_port_in_use_names_address(tmp_path: Path):
    port = free_port()
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", port))
        occupant.listen()
        result = subprocess.run(
            [sys.executable, "-m", "ocoserver", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    assert result.returncode == 2
    assert f"ocoserver: error: cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "[Errno" not in result.stderr
    assert "ocoserver stopped" not in result.stderr
