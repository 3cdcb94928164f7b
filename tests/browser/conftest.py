"""Browser tests: Herald served by a real HTTP server on loopback, driven by headless
Chromium through Selenium. Screenshots of each page go to test-artifacts/screenshots/.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: apt-get install chromium
chromium-driver; .ci/run installs them). Without them these tests are skipped, saying so.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

if not CHROMIUM.exists():
    pytest.skip("browser tests need /usr/bin/chromium (apt-get install chromium chromium-driver)",
                allow_module_level=True)


@pytest.fixture
def live_app(db, backend, fake_slack, tmp_path):
    """Herald (single-workspace mode, fake Slack) with PUBLIC_URL = the live server's address."""
    from core.settings import Settings
    from tests.conftest import SIGNING_SECRET, TEST_TOKEN_KEYS
    from web import create_app
    from werkzeug.serving import make_server
    # Bind first so PUBLIC_URL (which sign-in links use) can name the port; the app is
    # plugged in behind the socket once it exists.
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start),
                         threaded=True)
    port = server.server_port
    settings = Settings.from_env({
        "DATABASE_URL": backend.url, "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS),
        "SECRET_KEY": "browser-test", "HERALD_INSTANCE_PATH": str(tmp_path),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": "xoxb-herald-test",
        "SLACK_API_URL": fake_slack.api_url, "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "QUEUE_URL": "memory://"})
    app = holder["app"] = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, name="herald-live", daemon=True)
    thread.start()
    app.config["LIVE_URL"] = f"http://127.0.0.1:{port}"
    yield app
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def downloads(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def driver(tmp_path, downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


@pytest.fixture
def screenshot(driver, backend, request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}-{backend.name}.png"
        driver.save_screenshot(str(path))
        return path
    return take



@pytest.fixture
def live_server(live_app):
    """The live server's base URL (http://127.0.0.1:<port>); the app is `live_app`."""
    return live_app.config["LIVE_URL"]
