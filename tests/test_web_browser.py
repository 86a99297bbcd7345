"""The web console in a real headless Chromium, driven by Playwright.

The test logs in, finds a computer that an agent registered, uploads and
deploys a package, and watches the job container page follow the agent's
job-state reports without a page reload. Screenshots of the dashboard, the
computer page and the job container page go to test-artifacts/ at the
repository root.

The module is skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

async_api = pytest.importorskip("playwright.async_api")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from ocoserver.app import create_app  # noqa: E402
from ocoserver.appkeys import STATE  # noqa: E402
from ocoserver.config import Config  # noqa: E402
from ocoserver.store import computers  # noqa: E402
from tests.agents import PlainAgent  # noqa: E402
from tests.console import ADMIN_NAME, ADMIN_PASSWORD, add_admin  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HOSTNAME = "lab-pc-01"
SOFTWARE = [
    {"name": "Firefox ESR", "version": "128.5.0", "description": "web browser"},
    {"name": "LibreOffice", "version": "24.8.3", "description": "office suite"},
]
# Job output with markup, which the live view must show as text.
OUTPUT = "installed firefox <img src=x onerror=alert(1)>\n"
# Milliseconds the browser waits for a page element or a live update; the
# page polls every 2000 ms.
WAIT_MS = 15000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    """The real application on a real port, with a test client for the agent."""
    app = create_app(Config.for_tests(tmp_path / "data"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def browser_page() -> Any:
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT_MS)
        yield page
        await browser.close()


def write_zip(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("setup.cmd", "echo installed\n")
    path.write_bytes(buffer.getvalue())
    return path


async def register_agent(client: TestClient) -> PlainAgent:
    await computers.add(client.app[STATE].database, HOSTNAME)
    agent = PlainAgent(client, HOSTNAME)
    await agent.hello()
    status, _ = await agent.call("update.json", hostname=HOSTNAME, software=SOFTWARE)
    assert status == 200
    return agent


async def report_state(agent: PlainAgent, fixture: str, **data: Any) -> None:
    status, payload = await agent.call(fixture, **{"job-id": 1, **data})
    assert status == 200, payload


async def test_console_deploys_and_follows_job(server, browser_page, tmp_path):
    page = browser_page
    base = str(server.make_url(""))
    await add_admin(server.app[STATE].database)
    agent = await register_agent(server)
    ARTIFACTS.mkdir(exist_ok=True)

    # Log in; the dashboard counts the computer that just checked in.
    await page.goto(f"{base}/")
    assert "/login" in page.url
    await page.fill("input[name=name]", ADMIN_NAME)
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:has-text('Dashboard')")
    assert await page.text_content("#online") == "1"
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # The computer page shows the software list the agent sent.
    await page.click("nav >> text=Computers")
    await page.click(f"table >> text={HOSTNAME}")
    software = await page.text_content("#software")
    assert "Firefox ESR" in software
    assert "24.8.3" in software
    await page.screenshot(path=str(ARTIFACTS / "computer.png"), full_page=True)

    # Upload a package through the form.
    await page.click("nav >> text=Packages")
    await page.fill("#upload input[name=family]", "firefox")
    await page.fill("#upload input[name=version]", "128.6.0")
    await page.fill("#upload input[name=install_procedure]", "setup.cmd")
    await page.set_input_files(
        "#upload input[name=file]", str(write_zip(tmp_path / "firefox.zip"))
    )
    await page.click("#upload button[type=submit]")
    await page.wait_for_selector("#package-1")

    # Deploy it to the computer; the job container page opens.
    await page.click("#package-1 >> text=Deploy")
    await page.fill("#deploy input[name=name]", "firefox rollout")
    await page.check(f"#deploy label:has-text('{HOSTNAME}') input")
    await page.click("#deploy button[type=submit]")
    await page.wait_for_selector("h1:has-text('firefox rollout')")
    state_cell = "#job-1 [data-field=state_name]"
    assert await page.text_content(state_cell) == "waiting"

    # A marker on the window survives only if the page is never reloaded.
    await page.evaluate("window.liveMarker = 'kept'")

    await agent.hello()
    await report_state(agent, "update_job_state-executing.json")
    await page.wait_for_selector(f"{state_cell}:has-text('executing')")
    assert await page.text_content("#count-running") == "1"

    await report_state(agent, "update_job_state-finished.json", message=OUTPUT)
    await page.wait_for_selector(f"{state_cell}:has-text('succeeded')")
    assert await page.text_content("#count-succeeded") == "1"
    assert await page.text_content("#job-1 [data-field=return_code]") == "0"
    assert await page.text_content("#job-1 [data-field=message]") == OUTPUT
    assert await page.locator("#job-1 img").count() == 0
    bar_class = await page.eval_on_selector(
        ".progress .succeeded", "element => element.className"
    )
    assert bar_class == "succeeded w-100"
    assert await page.evaluate("window.liveMarker") == "kept"
    await page.screenshot(path=str(ARTIFACTS / "job-container.png"), full_page=True)

    # Removing the container takes a confirmation page, then its POST form.
    await page.click("text=Remove job container")
    await page.wait_for_selector("h1:has-text('Remove job container firefox rollout?')")
    await page.click("form button:has-text('Remove job container')")
    await page.wait_for_selector("h1:has-text('Job containers')")
    assert await page.locator("text=firefox rollout").count() == 0
