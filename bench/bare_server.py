"""The baseline: a bare aiohttp handler that reads the body and returns a constant.

bench/run.py starts it beside ocoserver and loads both the same way, so
ocoserver's hello rate is given as a share of what aiohttp itself reaches.
"""

from __future__ import annotations

import argparse

from aiohttp import web

BODY = b'{"jsonrpc": "2.0", "id": 1, "error": null, "result": {"success": true}}'


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api-agent.php", handle)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
