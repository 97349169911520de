"""The situation board (/board) in a real browser: Debian's chromium driven by Selenium, against `yunshegong serve
--demo` run as an operator runs it. A coordinator signs in through the form, the charts are drawn (a screenshot
shows drawn content in each chart's box, not only a page that loaded), the numbers are the `situation` query's,
nothing is loaded from elsewhere and the console stays clean; a wrong password and a volunteer are turned away.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and chromium-driver). Without them the
tests are skipped -- except in CI (the CI environment variable set), where they fail: .ci/run installs them.
One browser and one service for the whole module: starting them is most of the time this takes.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import CHECKOUT, free_port, start, stop, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 30  # bounds a failure only (a loaded CI machine): each wait returns as soon as its condition holds
CHARTS = ("urgency", "district", "modes", "map")
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"
SITUATION = "{ situation { openRequests overdueRequests openRequestsByCommunity { community { id } } } }"
SUBMIT = (
    'mutation($c: ID!) { submitHelpRequest(input: {communityId: $c, title: "看板实时测试", category: OTHER, '
    'urgency: CRITICAL, requesterName: "测试", requesterPhone: "13900000000"}) { errors { code } } }'
)

# -- what "drawn" means in a chart's box --
# A pixel is ink when it differs from the tile's background by more than INK_DISTANCE (sum of the channels'
# differences); a colour counts when it covers COLOUR_SHARE of the box (anti-aliased edges do not). Measured at
# 1600×1000 with the demo: drawn charts cover 8.5-30 % of their box with ink in 3-5 colours; the same boxes with
# no data ("暂无数据", bare axes) 0.9-2.5 % in 0-1 colours. Drawn means both thresholds are passed.
TILE_BACKGROUND = (0x13, 0x1D, 0x31)
INK_DISTANCE = 60
MIN_INK_SHARE = 0.05
MIN_COLOURS = 3
COLOUR_SHARE = 0.004


def _browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    reason = f"the board test needs {' and '.join(missing)} (.ci/run installs chromium and chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure")
    return reason


@dataclass
class Service:
    base: str
    proc: subprocess.Popen[bytes]

    def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=WAIT
        )
        return dict(response.json())

    def token(self, username: str) -> str:
        body = self.post(LOGIN, {"u": username, "p": f"demo-{username}-2021"})
        return str(body["data"]["login"]["token"])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`yunshegong serve --demo` on its own embedded database and a free port, as the README runs it."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    data = tmp_path_factory.mktemp("board")
    port = free_port()
    log = data / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env |= {"YUNSHEGONG_JOBS_INTERVAL": "0"}  # the demo's numbers stay put while the test compares them
    proc = start([*CHECKOUT, "serve", "--demo", "--data-dir", str(data / "pgdata"), "--port", str(port)], env, log)
    try:
        wait_healthy(proc, port, log)
        yield Service(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc, signal.SIGINT, timeout=60)


@pytest.fixture(scope="module")
def browser(service: Service) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000", "--lang=zh-CN"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given: Selenium Manager never runs (it would download a browser and a driver).
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, service: Service) -> Any:
    """The board, fresh: no token from an earlier test, the console read from here on."""
    browser.get(f"{service.base}/board?lang=zh")
    browser.execute_script("window.sessionStorage.clear(); window.localStorage.clear();")
    browser.get(f"{service.base}/board?lang=zh")
    browser.get_log("browser")  # what the previous test left
    return browser


# -- helpers ---------------------------------------------------------------------------------------------------


def _until(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, message=what)


def _sign_in(driver: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    _until(driver, lambda d: d.find_element(By.ID, "username").is_displayed(), "the sign-in form")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "signin-submit").click()


def _rendered(driver: Any) -> None:
    _until(driver, lambda d: d.execute_script("return document.body.dataset.rendered") == "true", "charts drawn")


def _number(driver: Any, element_id: str) -> int:
    text = driver.execute_script(f"return document.getElementById('{element_id}').textContent")
    return int(re.sub(r"[^0-9]", "", text))


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@dataclass
class Ink:
    share: float  # of the box's pixels that are not background
    colours: int  # distinct colours (quantised) covering at least COLOUR_SHARE of the box each

    @property
    def drawn(self) -> bool:
        return self.share >= MIN_INK_SHARE and self.colours >= MIN_COLOURS


def ink(driver: Any) -> dict[str, Ink]:
    """Each chart's box in a screenshot of the page, measured."""
    import numpy
    from PIL import Image

    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    ratio = driver.execute_script("return window.devicePixelRatio") or 1
    measured = {}
    for name in CHARTS:
        box = driver.execute_script(
            "var r = document.getElementById('chart-' + arguments[0]).getBoundingClientRect();"
            "return [r.left, r.top, r.right, r.bottom];",
            name,
        )
        left, top, right, bottom = (round(v * ratio) for v in box)
        pixels = numpy.asarray(shot.crop((left, top, right, bottom)), dtype=numpy.int16).reshape(-1, 3)
        assert len(pixels), f"the {name} chart has no box"
        far = pixels[numpy.abs(pixels - TILE_BACKGROUND).sum(axis=1) > INK_DISTANCE]
        _buckets, counts = numpy.unique(far // 32, axis=0, return_counts=True)
        colours = int((counts >= COLOUR_SHARE * len(pixels)).sum())
        measured[name] = Ink(len(far) / len(pixels), colours)
    return measured


# -- tests -----------------------------------------------------------------------------------------------------


def test_board_page_is_served_with_a_strict_policy(service: Service) -> None:
    # when the page is fetched
    response = httpx.get(f"{service.base}/board", timeout=WAIT)
    # then it forbids inline code, other origins and framing, and names only its own files
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert assets
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert "//" not in asset, asset
        assert httpx.get(f"{service.base}/{asset}", timeout=WAIT).status_code == 200, asset


def test_coordinator_signs_in_and_sees_the_situation_drawn(page: Any, service: Service) -> None:
    from selenium.webdriver.common.by import By

    # given the demo data, when orgadmin signs in through the form
    _sign_in(page, "orgadmin", "demo-orgadmin-2021")
    _rendered(page)
    # then every chart's box holds drawn content
    measured = ink(page)
    assert all(m.drawn for m in measured.values()), measured
    # and the big numbers are the situation query's answer for the same user
    answer = service.post(SITUATION, token=service.token("orgadmin"))["data"]["situation"]
    assert _number(page, "open-count") == answer["openRequests"]
    assert _number(page, "overdue-count") == answer["overdueRequests"]
    overdue_tile = page.find_element(By.ID, "tile-overdue").get_attribute("class")
    assert ("alert" in overdue_tile) == (answer["overdueRequests"] > 0)
    # and the token is in sessionStorage only
    stored = page.execute_script("return window.sessionStorage.getItem('yunshegong.board.token')")
    assert stored
    assert page.execute_script("return window.localStorage.length") == 0
    assert stored not in page.current_url
    # and everything came from the service itself
    resources = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources
    assert [r for r in resources if not r.startswith(service.base + "/")] == []
    # and the live connection is up
    _until(page, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "live", "live")

    # when the language is toggled, then the titles are English
    page.find_element(By.ID, "lang").click()
    assert page.find_element(By.CSS_SELECTOR, "#tile-urgency h2").text == "By urgency"
    assert page.find_element(By.CSS_SELECTOR, "#tile-overdue h2").text == "Overdue"
    assert "lang=en" in page.current_url

    # when a help request is submitted elsewhere, then the board shows it within seconds (helpRequestChanged)
    before = _number(page, "open-count")
    community = answer["openRequestsByCommunity"][0]["community"]["id"]
    token = service.token("orgadmin")
    assert service.post(SUBMIT, {"c": community}, token=token)["data"]["submitHelpRequest"]["errors"] == []
    now = service.post(SITUATION, token=token)["data"]["situation"]["openRequests"]
    assert now != before
    _until(page, lambda d: _number(d, "open-count") == now, "the board reloaded after the change")
    # and the console stayed clean throughout
    assert _severe(page) == []

    # when signing out, then the form is back and the token gone
    page.find_element(By.ID, "signout").click()
    assert page.find_element(By.ID, "username").is_displayed()
    assert page.execute_script("return window.sessionStorage.getItem('yunshegong.board.token')") is None


def test_the_drawn_check_fails_on_a_board_without_data(page: Any) -> None:
    """The screenshot check can fail: the same board with every list of the answer emptied (the browser's
    fetch rewrites the response; nothing in the page or the service changes) is not drawn."""
    added = page.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": """
            const real = window.fetch;
            window.fetch = (...args) => real(...args).then(async (response) => {
              const body = await response.clone().json().catch(() => null);
              const s = body && body.data && body.data.situation;
              if (!s) return response;
              for (const key of Object.keys(s)) if (Array.isArray(s[key]) && key !== "figures") s[key] = [];
              return new Response(JSON.stringify(body), {status: response.status, headers: response.headers});
            });"""
        },
    )
    try:
        page.refresh()
        # given the board answered with no data, when orgadmin signs in
        _sign_in(page, "orgadmin", "demo-orgadmin-2021")
        _rendered(page)
        # then no chart's box passes as drawn
        measured = ink(page)
        assert not any(m.drawn for m in measured.values()), measured
    finally:
        page.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})
        page.execute_script("window.sessionStorage.clear()")


def test_wrong_password_shows_an_error_and_stores_nothing(page: Any) -> None:
    from selenium.webdriver.common.by import By

    # when orgadmin signs in with a wrong password
    _sign_in(page, "orgadmin", "not-the-password")
    error = page.find_element(By.ID, "signin-error")
    _until(page, lambda d: error.is_displayed(), "the sign-in error")
    # then the form says why, no token is kept and the board stays hidden
    assert error.get_attribute("data-code") == "UNAUTHENTICATED"
    assert page.execute_script("return window.sessionStorage.length + window.localStorage.length") == 0
    assert not page.find_element(By.ID, "board").is_displayed()
    assert _severe(page) == []


def test_volunteer_is_told_the_board_is_not_for_them(page: Any) -> None:
    from selenium.webdriver.common.by import By

    # when a volunteer signs in
    _sign_in(page, "volunteer", "demo-volunteer-2021")
    message = page.find_element(By.ID, "message")
    _until(page, lambda d: message.is_displayed(), "the forbidden message")
    # then the page says the board is not theirs (FORBIDDEN), not an empty board
    assert message.get_attribute("data-code") == "forbidden"
    assert not page.find_element(By.ID, "board").is_displayed()
    assert page.find_element(By.ID, "signout").is_displayed()
    assert _severe(page) == []
    page.find_element(By.ID, "signout").click()


def test_a_revoked_token_returns_to_the_form(page: Any, service: Service) -> None:
    from selenium.webdriver.common.by import By

    # given a social worker looking at the board
    _sign_in(page, "socialworker", "demo-socialworker-2021")
    _rendered(page)
    _until(page, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "live", "live")
    # when their password is changed elsewhere (every older token is revoked)
    token = service.token("socialworker")
    changed = service.post(
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { errors { code } } }",
        {"i": {"currentPassword": "demo-socialworker-2021", "newPassword": "board-test-new-password-2026"}},
        token=token,
    )
    assert changed["data"]["changePassword"]["errors"] == []
    # then the board notices at once (the live connection closes with 4403) and shows the form, token gone
    error = page.find_element(By.ID, "signin-error")
    _until(page, lambda d: error.is_displayed(), "back at the sign-in form")
    assert error.get_attribute("data-code") == "expired"
    assert page.execute_script("return window.sessionStorage.length") == 0
    # and the console shows only the refused request (401), nothing broken
    severe = _severe(page)
    assert all(" 401 " in entry["message"] for entry in severe), severe
