from tests.conftest import load_fixture


async def test_hello_unknown_computer_rejected(client):
    body = load_fixture("agent-1.1.6", "hello-first.json")

    response = await client.post("/api-agent.php", json=body)

    assert response.status == 401
    payload = await response.json()
    assert payload["error"]["code"] == -32001
