"""The console and the API in a real browser: `streamlit run` serves the console over a store filled by a small
pipeline run, headless Chromium (Debian's chromium + chromium-driver, `make browser-deps`) logs in, opens the
monitoring page, keeps the alert portal open while another run stores a new CRITICAL (it appears without a
click), reloads the page and stays logged in, draws an object's light curve; `nightwatch api` serves /docs and
/redoc from local assets (this machine has no internet, so a page that renders is the proof). Screenshots go to
docs/screenshots/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from access import accounts
from store.hot import HotStore
from store.schema import alerts
from tests.conftest import simulated_night
from tests.test_access import PASSWORD

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "docs" / "screenshots"  # linked from the README
REFRESH_S = 3  # the portal's refresh in this test (NIGHTWATCH_CONSOLE_REFRESH_S; 30 s by default)
STORM_SEED = 3  # a simulated GCN burst that holds a CRITICAL (checked in the test)
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
def night(tmp_path_factory):
    return simulated_night(tmp_path_factory.mktemp("browser"), count=300)


@pytest.fixture(scope="module")
def console_url(night):
    folder = night
    store = HotStore(f"sqlite:///{folder}/nightwatch.db")
    store.ensure_schema()
    accounts.bootstrap(store, "admin", PASSWORD)
    store.close()
    port = free_port()
    log = (folder / "streamlit.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "NIGHTWATCH_DB_URL"}
    env["NIGHTWATCH_CONSOLE_REFRESH_S"] = str(REFRESH_S)
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


def log_in(browser, url: str) -> WebDriverWait:
    wait = WebDriverWait(browser, 60)
    browser.get(url)
    name = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'input[aria-label="User name"]')))
    name.send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, 'input[aria-label="Password"]').send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[.//p[text()='Log in']]").click()
    wait.until(ec.presence_of_element_located((By.XPATH, "//h1[contains(., 'Monitoring')]")))
    return wait


def open_page(browser, wait: WebDriverWait, page: str, title: str) -> None:
    choice = (By.XPATH, f"//*[@data-testid='stSidebar']//p[text()='{page}']")
    wait.until(ec.element_to_be_clickable(choice)).click()
    wait.until(ec.presence_of_element_located((By.XPATH, f"//h1[contains(., '{title}')]")))


def metric(browser, label: str) -> int:
    for element in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        lines = element.text.splitlines()
        if lines and lines[0] == label:
            return int(lines[1].replace(",", ""))
    raise AssertionError(f"no metric {label!r}")


def shot(browser, name: str) -> None:
    time.sleep(1.5)  # let the charts finish drawing before the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 20_000


def test_log_in_and_see_the_monitoring_panels_with_data(console_url, browser):
    wait = log_in(browser, console_url)
    # The panels with their figures: the latency metric ends in "s (p50)", the error rate holds "of".
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[contains(text(), 's (p50)')]")))
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')) >= 5)
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "canvas, svg.marks")) >= 3)  # charts
    page = browser.find_element(By.TAG_NAME, "body").text
    for panel in ("Event rate", "Processing latency", "Queue depth", "Error rate", "Alert volume", "Agent health"):
        assert panel in page
    assert "SEV-" in page or "No incident" in page
    assert "admin" in page and "Super Admin" in page
    shot(browser, "monitoring.png")


def test_portal_shows_a_new_critical_from_a_run_without_a_click(console_url, night, browser):
    wait = log_in(browser, console_url)
    open_page(browser, wait, "Alerts", "Alert portal")
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')) >= 4)
    before = metric(browser, "CRITICAL")
    assert "New CRITICAL" not in browser.find_element(By.TAG_NAME, "body").text

    # Another run stores a GCN burst with a CRITICAL into the same store while the page stays open.
    def critical_in_store() -> int:
        store = HotStore(f"sqlite:///{night}/nightwatch.db")
        try:
            with store.engine.connect() as conn:
                return conn.execute(
                    sa.select(sa.func.count()).where(alerts.c.level == "CRITICAL", alerts.c.status != "resolved")
                ).scalar()
        finally:
            store.close()

    assert critical_in_store() == before
    run = [sys.executable, "-m", "cli.main", "run", "--simulate=60", "--mix=gcn=1", f"--seed={STORM_SEED}"]
    done = subprocess.run(
        [*run, f"--output={night}", "--run-id=storm"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = critical_in_store()
    assert stored > before, f"seed {STORM_SEED} stored no new CRITICAL"
    WebDriverWait(browser, 4 * REFRESH_S + 30).until(
        lambda driver: "New CRITICAL alert" in driver.find_element(By.TAG_NAME, "body").text
    )
    assert metric(browser, "CRITICAL") == stored
    shot(browser, "alert-portal-storm.png")


def test_reloading_the_page_keeps_the_session(console_url, browser):
    wait = log_in(browser, console_url)
    assert "session=" in browser.current_url
    browser.refresh()
    wait.until(ec.presence_of_element_located((By.XPATH, "//h1[contains(., 'Monitoring')]")))
    assert not browser.find_elements(By.CSS_SELECTOR, 'input[aria-label="Password"]')
    assert "Super Admin" in browser.find_element(By.TAG_NAME, "body").text


def test_an_objects_light_curve_per_band(console_url, night, browser):
    """The Objects page opened on the object with the longest light curve (simulated ZTF packets carry 30 days of
    history): one panel per band drawn, the points listed; saved as the README's light-curve screenshot."""
    from store.schema import lightcurve

    store = HotStore(f"sqlite:///{night}/nightwatch.db")
    with store.engine.connect() as conn:
        object_id = conn.execute(
            sa.select(lightcurve.c.object_id)
            .where(lightcurve.c.source == "ztf")
            .group_by(lightcurve.c.object_id)
            .order_by(sa.func.count().desc(), lightcurve.c.object_id)
        ).scalar()
    store.close()
    assert object_id, "the simulated night stored light-curve points"
    wait = log_in(browser, console_url)
    # The session rides in the URL: a new page load keeps it and lands on the object given there.
    browser.get(f"{browser.current_url}&page=Objects&object={object_id}")
    wait.until(ec.presence_of_element_located((By.XPATH, f"//*[contains(text(), 'Object {object_id}')]")))
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "canvas, svg.marks")) >= 1)
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Light curve" in page and "points:" in page and "MJD" in page
    # the latest event's cutouts, rendered from its archived packet (or the line saying why there are none)
    wait.until(
        lambda driver: (
            len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')) >= 3
            or "No cutouts" in driver.find_element(By.TAG_NAME, "body").text
        )
    )
    shot(browser, "object-lightcurve.png")


@pytest.fixture(scope="module")
def api_url(night):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NIGHTWATCH_DB_URL"}
    command = [sys.executable, "-m", "cli.main", "api", "--output", str(night), "--port", str(port)]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "the API did not start"
            try:
                with urllib.request.urlopen(f"{url}/v1/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_api_docs_render_without_network(api_url, browser):
    """The machine has no internet: Swagger UI and ReDoc draw only if their scripts come from the API itself."""
    wait = WebDriverWait(browser, 60)
    browser.get(f"{api_url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    assert "Nightwatch external API" in browser.find_element(By.TAG_NAME, "body").text
    sources = [element.get_attribute("src") for element in browser.find_elements(By.TAG_NAME, "script")]
    assert all(src.startswith(api_url) for src in sources if src), sources
    browser.get(f"{api_url}/redoc")
    wait.until(lambda driver: "/v1/alerts" in driver.find_element(By.TAG_NAME, "body").text)
