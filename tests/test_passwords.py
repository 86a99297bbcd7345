"""Local admin password rotation against the real server and the CLI commands.

The agent side is played with the captured 1.2.0 requests: signed bodies,
rising timestamps, and passwords encrypted the way the OCO agent does it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import json
import logging
import os
import stat
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ocoserver import passwordkey
from ocoserver.agent_crypto import AgentCryptoError, agent_cipher_key, decrypt_reported
from ocoserver.cli import build_parser
from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.errors import AdminError
from ocoserver.passwordkey import PasswordKeyError
from ocoserver.store import computers
from tests.conftest import load_fixture

GEN2 = "agent-1.2.0"
HOSTNAME = "lab-pc-01"
ALPHABET = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"


def agent_encrypt(password: str, agent_key: str) -> dict[str, str]:
    """Encrypt like the OCO agent: AES-256-CBC, random IV, PKCS#7, base64.

    The agent pads the key with NUL characters to 32 and the password by
    its character count, both before encoding them as UTF-8.
    """
    key = (agent_key[:32] + "\0" * (32 - len(agent_key))).encode("utf-8")
    pad = 16 - len(password) % 16
    padded = (password + chr(pad) * pad).encode("utf-8")
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    return {
        "iv": base64.b64encode(iv).decode("ascii"),
        "data": base64.b64encode(data).decode("ascii"),
    }


class Agent:
    """A generation 2 agent: signed bodies built from the captured requests."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.agent_key = ""
        self.last_timestamp = 0.0

    async def call(
        self, fixture: str, data: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = copy.deepcopy(load_fixture(GEN2, fixture))
        self.last_timestamp = max(round(time.time(), 4), self.last_timestamp + 0.001)
        body["params"]["timestamp"] = self.last_timestamp
        if data is not None:
            body["params"]["data"] = data
        raw = json.dumps(body).encode("utf-8")
        signature = hmac.new(self.agent_key.encode("utf-8"), raw, hashlib.sha256)
        response = await self.client.post(
            "/api-agent.php",
            data=raw,
            headers={
                "content-type": "application/json",
                "x-oco-agent-signature": signature.hexdigest(),
            },
        )
        return response.status, await response.json()

    async def hello(self) -> dict[str, Any]:
        status, payload = await self.call("hello.json")
        assert status == 200, payload
        params = payload["result"]["params"]
        if params["agent-key"] is not None:
            self.agent_key = params["agent-key"]
        return params

    async def report(self, *entries: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self.call("passwords.json", {"passwords": list(entries)})

    def encrypted(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        return {"username": username, "password": agent_encrypt(password, self.agent_key),
                **extra}


async def registered_agent(client: Any, database: Database) -> Agent:
    """Pre-register lab-pc-01, then do the signed first contact and confirm keys."""
    await computers.add(database, HOSTNAME)
    agent = Agent(client)
    first = await agent.hello()
    assert len(first["agent-key"]) == 32
    await agent.hello()
    return agent


async def run_cli(config: Config, *argv: str) -> str:
    """Run a command in this event loop against the server's data directory.

    Errors propagate as AdminError so tests can match their message.
    """
    args = build_parser().parse_args(list(argv))
    output = io.StringIO()
    with redirect_stdout(output):
        code = await args.run(args, config)
    assert code == 0
    return output.getvalue()


async def add_rule(config: Config, *extra: str, username: str = "administrator",
                   length: str = "16", valid_days: str = "30",
                   history: str = "3") -> int:
    output = await run_cli(
        config, "password-rule", "add", "--username", username,
        "--alphabet", ALPHABET, "--length", length, "--valid-days", valid_days,
        "--history", history, *extra,
    )  # fmt: skip
    return int(output.strip())


async def shown_passwords(config: Config, hostname: str = HOSTNAME) -> list[dict[str, Any]]:
    return json.loads(await run_cli(config, "computer", "passwords", hostname, "--json"))


async def stored_count(database: Database) -> int:
    return int(await database.fetch_value("SELECT COUNT(*) FROM computer_password"))


def database_bytes(config: Config) -> bytes:
    path = config.database_path
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# Protocol: due rules in the hello response


async def test_hello_lists_due_rule(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, "--computer", HOSTNAME)

    params = await agent.hello()

    assert params["update-passwords"] == [
        {"username": "administrator", "alphabet": ALPHABET, "length": 16}
    ]


async def test_hello_rule_scope(client, config, database):
    agent = await registered_agent(client, database)
    await computers.add(database, "lab-pc-02")
    await add_rule(config, "--computer", "lab-pc-02", username="other-computer")
    await add_rule(config, username="everyone", length="20")
    await add_rule(config, username="specific", length="12")
    await add_rule(config, "--computer", HOSTNAME, username="specific", length="24")

    params = await agent.hello()

    assert params["update-passwords"] == [
        {"username": "everyone", "alphabet": ALPHABET, "length": 20},
        {"username": "specific", "alphabet": ALPHABET, "length": 24},
    ]


async def test_removed_computer_does_not_widen_rule(client, config, database):
    agent = await registered_agent(client, database)
    await computers.add(database, "lab-pc-02")
    rule_id = await add_rule(config, "--computer", "lab-pc-02")

    await computers.remove(database, "lab-pc-02")
    params = await agent.hello()

    assert params["update-passwords"] == []
    rules = json.loads(await run_cli(config, "password-rule", "list", "--json"))
    assert [rule["id"] for rule in rules] == [rule_id]
    assert rules[0]["computers"] == []
    assert rules[0]["all_computers"] is False


# Protocol: storing reported passwords


async def test_encrypted_password_stored_and_shown(client, config, database, caplog):
    caplog.set_level(logging.DEBUG)
    agent = await registered_agent(client, database)
    rule_id = await add_rule(config, "--computer", HOSTNAME)
    password = "Kx7pQ2mZr9TfWb4n"

    status, payload = await agent.report(agent.encrypted("administrator", password))

    assert status == 200, payload
    assert payload["result"]["params"] == {}
    [entry] = await shown_passwords(config)
    assert entry["username"] == "administrator"
    assert entry["password"] == password
    assert entry["rule_id"] == rule_id
    table = await run_cli(config, "computer", "passwords", HOSTNAME)
    assert password in table
    assert password.encode() not in database_bytes(config)
    assert password not in caplog.text
    assert "password of user administrator on computer lab-pc-01 stored" in caplog.text
    params = await agent.hello()
    assert params["update-passwords"] == []


async def test_plain_string_password_stored(client, config, database, caplog):
    caplog.set_level(logging.DEBUG)
    agent = await registered_agent(client, database)
    await add_rule(config)
    password = "plain-Text-Password-42"

    status, payload = await agent.report({"username": "administrator", "password": password})

    assert status == 200, payload
    [entry] = await shown_passwords(config)
    assert entry["password"] == password
    assert password.encode() not in database_bytes(config)
    assert password not in caplog.text


async def test_reported_username_case_insensitive(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, username="Administrator")

    status, payload = await agent.report(agent.encrypted("ADMINISTRATOR", "Abcdefgh12345678"))

    assert status == 200, payload
    [entry] = await shown_passwords(config)
    assert entry["username"] == "Administrator"
    assert (await agent.hello())["update-passwords"] == []


async def test_history_keeps_newest(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, history="2")

    for password in ("first-Password-1", "second-Password-2", "third-Password-3"):
        status, payload = await agent.report(agent.encrypted("administrator", password))
        assert status == 200, payload

    history = await shown_passwords(config)
    assert [entry["password"] for entry in history] == [
        "third-Password-3", "second-Password-2",
    ]
    assert await stored_count(database) == 2


async def test_history_keeps_password_before_revocable(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, history="1")
    await agent.report(agent.encrypted("administrator", "applied-Password-1"))
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer_password SET created = datetime('now', '-10 minutes')"
        )

    await agent.report(agent.encrypted("administrator", "failed-Password-2"))
    both = await shown_passwords(config)
    await agent.report(agent.encrypted("administrator", "failed-Password-2", revoke=True))
    after_revoke = await shown_passwords(config)

    assert [entry["password"] for entry in both] == [
        "failed-Password-2", "applied-Password-1",
    ]
    assert [entry["password"] for entry in after_revoke] == ["applied-Password-1"]


async def test_history_trims_after_revoke_window(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, history="1")
    for password in ("first-Password-1", "second-Password-2"):
        await agent.report(agent.encrypted("administrator", password))
        async with database.transaction() as connection:
            await connection.execute(
                "UPDATE computer_password SET created = datetime(created, '-10 minutes')"
            )

    await agent.report(agent.encrypted("administrator", "third-Password-3"))

    history = await shown_passwords(config)
    assert [entry["password"] for entry in history] == [
        "third-Password-3", "second-Password-2",
    ]


async def test_history_shown_per_user_newest_first(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, username="root")
    await add_rule(config, username="administrator")

    status, payload = await agent.report(
        agent.encrypted("root", "root-Password-1"),
        agent.encrypted("administrator", "admin-Password-1"),
        agent.encrypted("root", "root-Password-2"),
    )

    assert status == 200, payload
    history = await shown_passwords(config)
    assert [(entry["username"], entry["password"]) for entry in history] == [
        ("administrator", "admin-Password-1"),
        ("root", "root-Password-2"),
        ("root", "root-Password-1"),
    ]


async def test_rule_due_again_after_valid_days(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config, valid_days="2")
    await agent.report(agent.encrypted("administrator", "old-Password-123"))
    assert (await agent.hello())["update-passwords"] == []

    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer_password SET created = datetime('now', '-2 days', '-1 minute')"
        )

    assert [entry["username"] for entry in (await agent.hello())["update-passwords"]] == [
        "administrator"
    ]


async def test_new_rule_due_despite_old_passwords(client, config, database):
    agent = await registered_agent(client, database)
    first_rule = await add_rule(config)
    await agent.report(agent.encrypted("administrator", "old-Password-123"))

    await run_cli(config, "password-rule", "remove", str(first_rule))
    await add_rule(config)

    assert [entry["username"] for entry in (await agent.hello())["update-passwords"]] == [
        "administrator"
    ]
    [entry] = await shown_passwords(config)
    assert entry["rule_id"] is None


async def test_empty_list_accepted(client, config, database):
    agent = await registered_agent(client, database)

    status, payload = await agent.call("passwords.json")

    assert status == 200, payload
    assert payload["result"]["params"] == {}
    assert not config.password_key_path.exists()


# Protocol: revoke


async def test_revoke_removes_recent_password(client, config, database, caplog):
    caplog.set_level(logging.INFO)
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "kept-Password-1"))
    await agent.report(agent.encrypted("administrator", "failed-Password-2"))

    status, payload = await agent.report(
        agent.encrypted("administrator", "failed-Password-2", revoke=True)
    )

    assert status == 200, payload
    history = await shown_passwords(config)
    assert [entry["password"] for entry in history] == ["kept-Password-1"]
    assert "revoked by the agent" in caplog.text
    assert "failed-Password-2" not in caplog.text


async def test_revoke_makes_rule_due_again(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "failed-Password-1"))

    await agent.report(agent.encrypted("administrator", "failed-Password-1", revoke=True))

    assert await stored_count(database) == 0
    assert len((await agent.hello())["update-passwords"]) == 1


async def test_revoke_ignores_other_password(client, config, database, caplog):
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "kept-Password-1"))

    status, payload = await agent.report(
        agent.encrypted("administrator", "unknown-Password", revoke=True)
    )

    assert status == 200, payload
    assert await stored_count(database) == 1
    assert "matched no password" in caplog.text


async def test_revoke_ignores_old_password(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "old-Password-12"))
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer_password SET created = datetime('now', '-6 minutes')"
        )

    status, payload = await agent.report(
        agent.encrypted("administrator", "old-Password-12", revoke=True)
    )

    assert status == 200, payload
    assert await stored_count(database) == 1


# Protocol: rejected reports


async def test_bad_base64_rejected(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    broken = agent.encrypted("administrator", "Second-Password-2")
    broken["password"]["data"] = "not base64!"

    status, payload = await agent.report(
        agent.encrypted("administrator", "First-Password-1"), broken
    )

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert "'administrator'" in payload["error"]["message"]
    assert "base64" in payload["error"]["message"]
    assert await stored_count(database) == 0


async def test_wrong_agent_key_rejected(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    entry = {
        "username": "administrator",
        "password": agent_encrypt("Some-Password-1", "z" * 32),
    }

    status, payload = await agent.report(entry)

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert "does not decrypt" in payload["error"]["message"]
    assert await stored_count(database) == 0


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"password": "Some-Password-1"}, "username is missing"),
        ({"username": "", "password": "Some-Password-1"}, "username is empty"),
        ({"username": 5, "password": "Some-Password-1"},
         "username must be a string, not int"),
        ({"username": "administrator"}, "password for user 'administrator' is missing"),
        ({"username": "administrator", "password": ""}, "is empty"),
        ({"username": "administrator", "password": 12345678}, "not int"),
        ({"username": "administrator", "password": {"iv": "AAAA"}}, "data is missing"),
        ({"username": "administrator", "password": "x" * 1025}, "longer than 1024"),
        ({"username": "administrator", "password": "Some-Password-1", "revoke": "yes"},
         "use true or false"),
    ],
    ids=[
        "no-username", "empty-username", "number-username", "no-password",
        "empty-password", "number-password", "no-data", "too-long", "revoke-text",
    ],
)
async def test_invalid_entry_rejected(client, config, database, entry, fragment):
    agent = await registered_agent(client, database)
    await add_rule(config)

    status, payload = await agent.report(entry)

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert fragment in payload["error"]["message"]
    assert await stored_count(database) == 0


async def test_short_iv_rejected(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    entry = agent.encrypted("administrator", "Some-Password-1")
    entry["password"]["iv"] = base64.b64encode(b"short").decode()

    status, payload = await agent.report(entry)

    assert status == 400
    assert "iv is 5 bytes" in payload["error"]["message"]


async def test_username_without_rule_rejected(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)

    status, payload = await agent.report(
        agent.encrypted("administrator", "Some-Password-1"),
        agent.encrypted("root", "Other-Password-2"),
    )

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert "no password rule for user 'root'" in payload["error"]["message"]
    assert await stored_count(database) == 0


async def test_rule_for_other_computer_rejected(client, config, database):
    agent = await registered_agent(client, database)
    await computers.add(database, "lab-pc-02")
    await add_rule(config, "--computer", "lab-pc-02")

    status, payload = await agent.report(agent.encrypted("administrator", "Some-Pass-1"))

    assert status == 400
    assert await stored_count(database) == 0


# Server password key file


async def test_key_file_created_with_mode_0600(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)

    await agent.report(agent.encrypted("administrator", "Some-Password-1"))

    mode = stat.S_IMODE(config.password_key_path.stat().st_mode)
    assert mode == 0o600
    key_text = config.password_key_path.read_text()
    assert len(bytes.fromhex(key_text.strip())) == 32
    assert key_text.strip().encode() not in database_bytes(config)


async def test_readable_key_file_rejected(client, config, database, caplog):
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "Some-Password-1"))
    config.password_key_path.chmod(0o640)

    status, payload = await agent.report(agent.encrypted("administrator", "Next-Password-2"))

    assert status == 500
    assert "password key file" in payload["error"]["message"]
    assert "mode 0640" in caplog.text
    assert await stored_count(database) == 1
    with pytest.raises(AdminError, match="chmod 600"):
        await run_cli(config, "computer", "passwords", HOSTNAME)


async def test_missing_key_file_reported(client, config, database):
    agent = await registered_agent(client, database)
    await add_rule(config)
    await agent.report(agent.encrypted("administrator", "Some-Password-1"))
    config.password_key_path.unlink()

    with pytest.raises(AdminError, match="not found"):
        await run_cli(config, "computer", "passwords", HOSTNAME)


def test_key_file_loaded_again(tmp_path):
    path = tmp_path / "data" / "password.key"

    created = passwordkey.load_or_create_key(path)
    loaded = passwordkey.load_key(path)

    assert created == loaded
    assert passwordkey.load_or_create_key(path) == created
    assert [entry.name for entry in path.parent.iterdir()] == ["password.key"]


def test_invalid_key_file_rejected(tmp_path):
    path = tmp_path / "password.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("not a key\n")

    with pytest.raises(PasswordKeyError, match="expected 64 hex digits"):
        passwordkey.load_key(path)


def test_stored_password_bound_to_row():
    key = os.urandom(32)
    stored = passwordkey.encrypt(key, 1, "administrator", "Some-Password-1")

    assert passwordkey.decrypt(key, 1, "administrator", stored) == "Some-Password-1"
    with pytest.raises(PasswordKeyError):
        passwordkey.decrypt(key, 2, "administrator", stored)
    with pytest.raises(PasswordKeyError):
        passwordkey.decrypt(key, 1, "root", stored)
    with pytest.raises(PasswordKeyError):
        passwordkey.decrypt(os.urandom(32), 1, "administrator", stored)


# Agent encryption


@pytest.mark.parametrize(
    "agent_key",
    [
        "60jjy9bbmd3f8prms8f4zzi1rbrb7o6i",
        "ukdh8wohfw318i4y51lwcu2loih717",
        "",
        "k" * 40,
    ],
    ids=["32-characters", "30-characters", "empty", "40-characters"],
)
@pytest.mark.parametrize(
    "password",
    # The agent pads by characters, so a non-ASCII password only encrypts when
    # its UTF-8 form is longer by a multiple of 16 bytes: 16 two-byte letters.
    ["a", "Exactly16Chars!!", "Kx7pQ2mZr9TfWb4n-longer-than-one-block", "ü" * 16 + "-x"],
    ids=["one-char", "one-block", "three-blocks", "non-ascii"],
)
def test_agent_encryption_round_trip(agent_key, password):
    assert decrypt_reported(agent_encrypt(password, agent_key), agent_key) == password


def test_agent_cipher_key_padding():
    assert agent_cipher_key("abc") == b"abc" + b"\0" * 29
    assert agent_cipher_key("k" * 40) == b"k" * 32
    assert agent_cipher_key("ä" * 32) == ("ä" * 16).encode("utf-8")


def test_agent_decrypt_rejects_bad_input():
    key = "60jjy9bbmd3f8prms8f4zzi1rbrb7o6i"
    valid = agent_encrypt("Some-Password-1", key)

    with pytest.raises(AgentCryptoError, match="iv is not valid base64"):
        decrypt_reported({**valid, "iv": "@@@@"}, key)
    with pytest.raises(AgentCryptoError, match="not a positive multiple of 16"):
        decrypt_reported({**valid, "data": base64.b64encode(b"x" * 15).decode()}, key)
    with pytest.raises(AgentCryptoError, match="string or an object"):
        decrypt_reported(["list"], key)


# CLI: password-rule


async def test_rule_list_shows_scope(client, config, database):
    await computers.add(database, HOSTNAME)
    await computers.add(database, "lab-pc-02")
    everyone = await add_rule(config, username="everyone")
    listed = await add_rule(config, "--computer", "LAB-PC-02", "--computer", HOSTNAME)

    rules = json.loads(await run_cli(config, "password-rule", "list", "--json"))
    table = await run_cli(config, "password-rule", "list")

    assert [(rule["id"], rule["computers"]) for rule in rules] == [
        (everyone, []),
        (listed, [HOSTNAME, "lab-pc-02"]),
    ]
    assert rules[0]["all_computers"] is True
    assert rules[1]["valid_days"] == 30
    assert "(all)" in table
    assert "lab-pc-01, lab-pc-02" in table


async def test_rule_alphabet_deduplicated(client, config, database):
    output = await run_cli(
        config, "password-rule", "add", "--username", "administrator",
        "--alphabet", "aabbcab", "--length", "8", "--valid-days", "1", "--history", "1",
    )  # fmt: skip

    [rule] = json.loads(await run_cli(config, "password-rule", "list", "--json"))
    assert rule["id"] == int(output)
    assert rule["alphabet"] == "abc"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--alphabet", "aaaa"], "at least 2 different"),
        (["--alphabet", ""], "at least 2 different"),
        (["--alphabet", "ab cd"], "not allowed"),
        (["--alphabet", "abcdé"], "not allowed"),
        (["--length", "7"], "use 8 to 256"),
        (["--length", "257"], "use 8 to 256"),
        (["--length", "ten"], "whole number"),
        (["--valid-days", "0"], "at least 1"),
        (["--history", "0"], "at least 1"),
        (["--username", "  "], "invalid username"),
        (["--computer", "no-such-pc"], "'no-such-pc' not found"),
    ],
    ids=[
        "one-character", "empty-alphabet", "space", "non-ascii", "short", "long",
        "length-text", "valid-days", "history", "blank-username", "unknown-computer",
    ],
)
async def test_rule_add_rejects_invalid(client, config, database, options, fragment):
    values = {
        "--username": "administrator", "--alphabet": ALPHABET, "--length": "16",
        "--valid-days": "30", "--history": "3",
    }  # fmt: skip
    extra: list[str] = []
    for option, value in zip(options[::2], options[1::2], strict=True):
        if option in values:
            values[option] = value
        else:
            extra += [option, value]
    argv = [item for pair in values.items() for item in pair]

    with pytest.raises(AdminError, match=fragment):
        await run_cli(config, "password-rule", "add", *argv, *extra)
    assert await database.fetch_value("SELECT COUNT(*) FROM password_rule") == 0


async def test_rule_add_rejects_overlap(client, config, database):
    await computers.add(database, HOSTNAME)
    everyone = await add_rule(config)
    listed = await add_rule(config, "--computer", HOSTNAME)

    with pytest.raises(AdminError, match=f"password rule {everyone} already rotates"):
        await add_rule(config, username="ADMINISTRATOR")
    with pytest.raises(AdminError, match=f"password rule {listed} already rotates"):
        await add_rule(config, "--computer", HOSTNAME)


async def test_rule_remove(client, config, database):
    rule_id = await add_rule(config)

    output = await run_cli(config, "password-rule", "remove", str(rule_id))

    assert output.strip() == f"removed password rule {rule_id}"
    with pytest.raises(AdminError, match=f"password rule {rule_id} not found"):
        await run_cli(config, "password-rule", "remove", str(rule_id))
    with pytest.raises(AdminError, match="invalid password rule id"):
        await run_cli(config, "password-rule", "remove", "x")


# CLI: computer passwords


async def test_computer_passwords_empty(client, config, database):
    await computers.add(database, HOSTNAME)

    output = await run_cli(config, "computer", "passwords", HOSTNAME)

    assert output.strip() == "no passwords stored for computer lab-pc-01"
    assert await shown_passwords(config) == []


async def test_computer_passwords_unknown_host(client, config, database):
    with pytest.raises(AdminError, match="'nowhere' not found"):
        await run_cli(config, "computer", "passwords", "nowhere")


async def test_computer_passwords_table(client, config, database):
    agent = await registered_agent(client, database)
    rule_id = await add_rule(config, length="200")
    password = "P" * 199 + "!"

    await agent.report(agent.encrypted("administrator", password))
    lines = (await run_cli(config, "computer", "passwords", HOSTNAME)).splitlines()

    assert lines[0].split() == ["USERNAME", "CREATED", "RULE_ID", "PASSWORD"]
    assert lines[1].split()[0] == "administrator"
    assert lines[1].split()[3] == str(rule_id)
    assert lines[1].endswith("  " + password)


def test_key_path_is_in_data_dir(tmp_path: Path):
    config = Config.for_tests(tmp_path / "data")

    assert config.password_key_path == tmp_path / "data" / "password.key"
