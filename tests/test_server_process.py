"""`python -m ocoserver` as a real process on a free port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from ocoserver.cli import main as cli_main
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
