"""Download load generator: N keep-alive connections reading with 1 MiB buffers.

    python bench/fetch.py --port 8080 --paths paths.txt --connections 50 --seconds 10

Each connection requests the next path of the file (round robin), reads the
response body with `recv_into` into a 1 MiB buffer and discards it, then
sends the next request. wrk 4.1 reads 8 KiB per system call and runs its
HTTP parser over every body byte, which made wrk itself the limit at about
1.6 GB/s on the 2-core machine of BENCHMARKS.md. This client reads up to
1 MiB per system call and does not parse the body. It prints one JSON
line: bytes received before the deadline, completed downloads, errors and
seconds.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time
from pathlib import Path

BUFFER_SIZE = 1024 * 1024
HEADER_LIMIT = 64 * 1024


class Download:
    """One keep-alive connection and the response it is reading."""

    def __init__(self, port: int, paths: list[str], start: int) -> None:
        self.port = port
        self.paths = paths
        self.next_path = start
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.socket.setblocking(False)
        self.header = b""
        self.remaining = -1
        self.send_request()

    def send_request(self) -> None:
        path = self.paths[self.next_path % len(self.paths)]
        self.next_path += 1
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n"
        self.socket.setblocking(True)
        self.socket.sendall(request.encode("ascii"))
        self.socket.setblocking(False)
        self.header = b""
        self.remaining = -1

    def read_header(self) -> int:
        """Read until the end of the header; return the body bytes read with it."""
        chunk = self.socket.recv(HEADER_LIMIT)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.header += chunk
        end = self.header.find(b"\r\n\r\n")
        if end < 0:
            return 0
        lines = self.header[:end].decode("latin-1").split("\r\n")
        if lines[0].split()[1] != "200":
            raise ConnectionError(f"unexpected status line {lines[0]!r}")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines[1:]
            if line.lower().startswith("content-length:")
        )
        body = len(self.header) - end - 4
        self.remaining = length - body
        return body


def run(port: int, paths: list[str], connections: int, seconds: float) -> dict[str, float]:
    selector = selectors.DefaultSelector()
    for number in range(connections):
        download = Download(port, paths, number)
        selector.register(download.socket, selectors.EVENT_READ, download)
    buffer = memoryview(bytearray(BUFFER_SIZE))
    received = completed = errors = 0
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            download: Download = key.data
            try:
                if download.remaining < 0:
                    received += download.read_header()
                else:
                    count = download.socket.recv_into(buffer, min(BUFFER_SIZE,
                                                                  download.remaining))
                    if count == 0:
                        raise ConnectionError("server closed the connection")
                    received += count
                    download.remaining -= count
            except (ConnectionError, OSError, StopIteration, IndexError):
                errors += 1
                selector.unregister(download.socket)
                download.socket.close()
                replacement = Download(port, paths, download.next_path)
                selector.register(replacement.socket, selectors.EVENT_READ, replacement)
                continue
            if download.remaining == 0:
                completed += 1
                download.send_request()
    return {"bytes": received, "downloads": completed, "errors": errors,
            "seconds": time.monotonic() - started}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths", type=Path, required=True,
                        help="file with one request path per line")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    paths = args.paths.read_text().split()
    print(json.dumps(run(args.port, paths, args.connections, args.seconds)))


if __name__ == "__main__":
    main()
