"""The console in a real browser: `streamlit run` serves it over a store filled by a small pipeline run, headless
Chromium (Debian's chromium + chromium-driver, `make browser-deps`) logs in and opens the monitoring page, and
a screenshot is kept as a test artefact (tests/artifacts/monitoring.png)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from access import accounts
from store.hot import HotStore
from tests.conftest import simulated_night
from tests.test_access import PASSWORD

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, "streamlit exited before serving"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not become healthy in {timeout_s} s")


@pytest.fixture(scope="module")
def console_url(tmp_path_factory):
    folder = simulated_night(tmp_path_factory.mktemp("browser"), count=300)
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    accounts.bootstrap(store, "admin", PASSWORD)
    store.close()
    port = free_port()
    log = (folder / "streamlit.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "NIGHTWATCH_DB_URL"}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "dashboard" / "app.py"),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        "--",
        "--output",
        str(folder),
    ]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def browser():
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "run `make browser-deps` first"
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,2600"):
        options.add_argument(argument)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_log_in_and_see_the_monitoring_panels_with_data(console_url, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(console_url)
    name = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'input[aria-label="User name"]')))
    name.send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, 'input[aria-label="Password"]').send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[.//p[text()='Log in']]").click()
    wait.until(ec.presence_of_element_located((By.XPATH, "//h1[contains(., 'Monitoring')]")))
    # The panels with their figures: the latency metric ends in "s (p50)", the error rate holds "of".
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[contains(text(), 's (p50)')]")))
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')) >= 5)
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "canvas, svg.marks")) >= 3)  # charts
    page = browser.find_element(By.TAG_NAME, "body").text
    for panel in ("Event rate", "Processing latency", "Queue depth", "Error rate", "Alert volume", "Agent health"):
        assert panel in page
    assert "SEV-" in page or "No incident" in page
    assert "admin" in page and "Super Admin" in page
    time.sleep(1.5)  # let the charts finish drawing before the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "monitoring.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
