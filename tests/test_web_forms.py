"""Malformed console form bodies get a 400 HTML page, never a 500.

Each body kind goes to /login, which needs no session, and to logged-in
form routes, including the package upload that reads its multipart body
itself.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import pytest

from ocoserver.db import Database
from tests.console import add_admin, log_in, session_token
from tests.test_web import zip_bytes

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY_BODY = (
    b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--zz--\r\n'
)

# (case id, Content-Type, extra headers, body, message shown on the page)
BODIES = [
    ("multipart-without-boundary", "multipart/form-data", {}, b"x",
     "the form body is malformed"),
    ("multipart-wrong-boundary", "multipart/form-data; boundary=yy", {},
     BOUNDARY_BODY, "the form body is malformed"),
    ("unknown-charset", f"{URLENCODED}; charset=latin-9999", {}, b"name=x",
     "the form's charset is unknown"),
    ("not-utf-8", URLENCODED, {}, b"name=\xff\xfe",
     "the form contains bytes that are not valid in its charset"),
    ("broken-gzip", URLENCODED, {"Content-Encoding": "gzip"}, b"not gzip at all",
     "the request body is incomplete or its Content-Encoding is invalid"),
]  # fmt: skip
CASE_IDS = [case[0] for case in BODIES]
SESSION_ROUTES = ["/settings", "/deploy", "/computers/1/remove", "/logout"]


@pytest.fixture
async def admin_client(client: Any, database: Database) -> Any:
    await add_admin(database)
    assert (await log_in(client)).status == 303
    return client


async def post_raw(
    client: Any, path: str, content_type: str, headers: dict[str, str], body: bytes
) -> Any:
    return await client.post(
        path,
        data=body,
        headers={"Content-Type": content_type, **headers},
        allow_redirects=False,
    )


def rejection_lines(caplog: Any, path: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith(f"rejected POST {path} ")
    ]


@pytest.mark.parametrize(
    ("case", "content_type", "headers", "body", "message"), BODIES, ids=CASE_IDS
)
async def test_login_malformed_body_400(
    client, caplog, case, content_type, headers, body, message
):
    caplog.set_level(logging.INFO, logger="ocoserver")

    response = await post_raw(client, "/login", content_type, headers, body)
    text = html.unescape(await response.text())

    assert response.status == 400
    assert response.content_type == "text/html"
    assert message in text
    assert "Content-Security-Policy" in response.headers
    assert len(rejection_lines(caplog, "/login")) == 1
    assert message in rejection_lines(caplog, "/login")[0]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", SESSION_ROUTES)
@pytest.mark.parametrize(
    ("case", "content_type", "headers", "body", "message"), BODIES, ids=CASE_IDS
)
async def test_session_form_malformed_body_400(
    admin_client, caplog, path, case, content_type, headers, body, message
):
    caplog.set_level(logging.INFO, logger="ocoserver")

    response = await post_raw(admin_client, path, content_type, headers, body)
    text = html.unescape(await response.text())

    assert response.status == 400
    assert message in text
    assert len(rejection_lines(caplog, path)) == 1
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("case", "content_type", "headers", "body", "message"), BODIES, ids=CASE_IDS
)
async def test_upload_malformed_body_400(
    admin_client, caplog, case, content_type, headers, body, message
):
    caplog.set_level(logging.INFO, logger="ocoserver")

    response = await post_raw(admin_client, "/packages", content_type, headers, body)
    text = html.unescape(await response.text())

    assert response.status == 400
    assert message in text
    assert len(rejection_lines(caplog, "/packages")) == 1
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_broken_body_closes_connection(client):
    response = await post_raw(
        client, "/login", URLENCODED, {"Content-Encoding": "gzip"}, b"not gzip"
    )
    await response.read()

    # The server closes the connection after the response, so aiohttp
    # does not read the rest of the broken body and log its traceback.
    assert response.status == 400
    assert response.headers["Connection"] == "close"
    assert (await client.get("/login")).status == 200


def multipart_part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return (
        f"--zz\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    )


async def test_upload_cut_after_file_keeps_nothing(admin_client, config):
    token = await session_token(admin_client)
    # The body ends inside the field after the file, without a closing boundary.
    body = (
        multipart_part("csrf_token", token.encode())
        + multipart_part("file", zip_bytes(), filename="notepad.zip")
        + b'--zz\r\nContent-Disposition: form-data; name="family"\r\n\r\nnotep'
    )

    response = await post_raw(
        admin_client, "/packages", "multipart/form-data; boundary=zz", {}, body
    )

    assert response.status == 400
    assert list(config.depot_path.iterdir()) == []


async def test_nested_multipart_upload_rejected(admin_client):
    token = await session_token(admin_client)
    body = (
        multipart_part("csrf_token", token.encode())
        + b"--zz\r\nContent-Type: multipart/mixed; boundary=yy\r\n"
        + b'Content-Disposition: form-data; name="file"\r\n\r\n--yy--\r\n--zz--\r\n'
    )

    response = await post_raw(
        admin_client, "/packages", "multipart/form-data; boundary=zz", {}, body
    )

    assert response.status == 400
    assert "nested multipart bodies are not accepted" in await response.text()
