"""No key, signature or password reaches the log, at any level.

One run exercises every path that handles a secret: first contact and key
issue, wrong plain keys, a download with the key in the query string,
signed requests with right and wrong signatures, a replay, registration
with right and wrong registration keys, and a password report. Then
every secret the run used or produced is looked for in the captured log.
"""

from __future__ import annotations

import logging

from ocoserver.cli.common import setup_logging
from ocoserver.store import settings
from tests.admin import add_package, make_package_folder, register
from tests.agents import PlainAgent, SignedAgent, agent_dumps
from tests.test_passwords import HOSTNAME, Agent, add_rule, agent_encrypt

REGISTRATION_KEY = "office-secret-1"
WRONG_KEYS = ["wrongwrongwrongwrongwrongwrong01", "office-secret-2"]
PASSWORD = "Kx7pQ2mZr9TfWb4n"


async def exercise_plain_agent(client, config) -> list[str]:
    await register(config, "plain-pc")
    agent = PlainAgent(client, hostname="plain-pc")
    await agent.hello()
    await agent.hello()
    folder = make_package_folder(config.data_dir.parent)
    package_id = await add_package(config, str(folder))
    response = await agent.download(package_id)
    assert response.status == 401
    guesser = PlainAgent(client, hostname="plain-pc")
    guesser.agent_key = WRONG_KEYS[0]
    status, _ = await guesser.call("hello.json")
    assert status == 401
    return [agent.agent_key, agent.server_key]


async def exercise_signed_agent(client, config) -> list[str]:
    await register(config, "signed-pc")
    agent = SignedAgent(client, hostname="signed-pc")
    await agent.hello()
    raw = agent_dumps(agent.body("hello.json"))
    signature = agent.sign(raw)
    accepted = await agent.post_raw(raw, signature)
    replayed = await agent.post_raw(raw, signature)
    wrong_raw = agent_dumps(agent.body("hello.json"))
    wrong_signature = agent.sign(wrong_raw, key=WRONG_KEYS[0])
    wrong = await agent.post_raw(wrong_raw, wrong_signature)
    assert [accepted.status, replayed.status, wrong.status] == [200, 401, 401]
    return [agent.agent_key, agent.server_key, signature, wrong_signature,
            accepted.headers["x-oco-server-signature"]]


async def exercise_registration(client, database) -> list[str]:
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, REGISTRATION_KEY)
    newcomer = PlainAgent(client, hostname="new-pc")
    newcomer.agent_key = REGISTRATION_KEY
    await newcomer.hello()
    stranger = PlainAgent(client, hostname="stranger-pc")
    stranger.agent_key = WRONG_KEYS[1]
    status, _ = await stranger.call("hello.json")
    assert status == 401
    return [newcomer.agent_key, newcomer.server_key]


async def exercise_password_report(client, config) -> list[str]:
    await register(config, HOSTNAME)
    agent = Agent(client)
    await agent.hello()
    await agent.hello()
    await add_rule(config, "--computer", HOSTNAME)
    encrypted = agent_encrypt(PASSWORD, agent.agent_key)
    status, _ = await agent.report({"username": "administrator", "password": encrypted})
    assert status == 200
    return [agent.agent_key, encrypted["data"]]


async def test_log_free_of_secrets(client, config, database, caplog):
    caplog.set_level(logging.DEBUG)
    # The logging setup of `ocoserver --config` with log_level = "debug".
    setup_logging("debug")

    secrets = [REGISTRATION_KEY, PASSWORD, *WRONG_KEYS]
    # Registration comes first: every captured request carries one uid,
    # and a new hostname with a uid already stored is rejected.
    secrets += await exercise_registration(client, database)
    secrets += await exercise_plain_agent(client, config)
    secrets += await exercise_signed_agent(client, config)
    secrets += await exercise_password_report(client, config)

    secrets += [(config.data_dir / "password.key").read_text().strip()]
    for row in await database.fetch_all("SELECT agent_key, server_key FROM computer"):
        secrets += [row["agent_key"], row["server_key"]]
    assert "rejected agent request" in caplog.text
    assert len(caplog.records) > 20
    for secret in set(secrets):
        assert len(secret) >= 8
        assert secret not in caplog.text, f"secret {secret[:4]}... found in the log"
