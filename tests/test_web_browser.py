"""``expipe-git serve`` in a real browser: headless Chromium driven by selenium.

Every page is reached by following links from the home page, as a person
would. A screenshot of each main page is saved under the test's temporary
folder (``screenshots/``). Without Chromium or chromedriver these tests are
skipped, unless EXPIPE_GIT_REQUIRE_BROWSER is set (as .ci/run sets it).
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import re
import shutil

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'expipe_git[web]'")
selenium = pytest.importorskip("selenium", reason="selenium is not installed: pip install 'expipe_git[test]'")

import webkit  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("EXPIPE_GIT_REQUIRE_BROWSER"):
        raise RuntimeError("EXPIPE_GIT_REQUIRE_BROWSER is set but chromium or chromedriver is missing")
    pytest.skip(
        "headless Chromium is not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-browser")
    env = webkit.isolated_env(root)
    server = webkit.Server(webkit.build_lab(root / "lab", env), env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,900",
        "--force-device-scale-factor=1",
        "--no-first-run",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def screenshot(driver, folder: pathlib.Path, name: str) -> pathlib.Path:
    """Save the whole page, 1360 pixels wide and as tall as it is, as NAME.png."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1360, "height": min(max(height, 600), 6000), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    path = folder / f"{name}.png"
    try:
        assert driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    return path


def no_alert(driver) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def click(driver, text: str) -> None:
    driver.find_element(By.LINK_TEXT, text).click()


def table_names(driver) -> list[str]:
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.actions tbody td:first-child a")]


def test_every_main_page_is_reached_by_links_from_home(lab, browser, shots):
    browser.get(lab.url)
    assert browser.title.startswith("Project")
    screenshot(browser, shots, "1-home")

    click(browser, "actions")
    assert browser.current_url.endswith("/actions")
    names = table_names(browser)
    assert names == webkit.action_names(lab.project_dir)
    screenshot(browser, shots, "2-actions")

    click(browser, "rec-01")
    assert browser.find_element(By.TAG_NAME, "h1").text == "action rec-01"
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "3.5 um" in page and "1.2 megaohm" in page  # module values with their units
    assert "Session went well" in page
    screenshot(browser, shots, "3-action")

    click(browser, "rat2")  # an action links to its entities ...
    assert browser.find_element(By.TAG_NAME, "h1").text == "entity rat2"
    assert browser.find_element(By.LINK_TEXT, "rec-01")  # ... and an entity to its actions
    browser.back()

    click(browser, "history")
    assert browser.find_element(By.TAG_NAME, "h1").text == "History of action 'rec-01'"
    screenshot(browser, shots, "4-history")

    short = lab.probe_commits[1][:7]
    click(browser, short)  # commits are linked by their 7-character id
    assert browser.current_url.endswith("/commit/" + lab.probe_commits[1])
    changes = browser.find_element(By.CSS_SELECTOR, "table.changes").text
    assert "depth" in changes and "2.0 um" in changes and "3.5 um" in changes
    screenshot(browser, shots, "5-commit")

    browser.get(lab.url)
    click(browser, "templates")
    click(browser, "hardware_daq")
    assert "sample_rate 10000.0 Hz" in browser.find_element(By.TAG_NAME, "main").text
    screenshot(browser, shots, "6-template")
    assert no_alert(browser)


def test_the_tag_filter_narrows_the_table_and_the_csv_follows(lab, browser, shots):
    browser.get(lab.url)
    click(browser, "actions")
    before = table_names(browser)
    field = browser.find_element(By.NAME, "tags")
    field.send_keys("place cell")
    old_page = browser.find_element(By.TAG_NAME, "html")
    field.submit()
    # submit() can return before the next page replaced this one: its rows
    # would then go stale while being read (seen once in CI).
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(old_page))
    after = table_names(browser)
    expected = webkit.names_with_tag(lab.project_dir, "place cell")
    assert sorted(after) == sorted(expected) and 0 < len(after) < len(before)
    assert f"{len(after)} of {len(before)} actions match" in browser.find_element(By.TAG_NAME, "main").text
    screenshot(browser, shots, "actions-filtered")
    href = browser.find_element(By.LINK_TEXT, "CSV").get_attribute("href")
    rows = list(csv.DictReader(io.StringIO(webkit.get(href).text)))
    assert sorted(r["name"] for r in rows) == sorted(expected)

    browser.find_element(By.PARTIAL_LINK_TEXT, "date").click()  # sort by date, then the other way
    browser.find_element(By.PARTIAL_LINK_TEXT, "date").click()
    newest_first = table_names(browser)
    assert sorted(newest_first) == sorted(expected) and newest_first == sorted(expected, reverse=True)


def test_a_hostile_tag_renders_as_text_and_runs_nothing(lab, browser, shots):
    browser.get(lab.url)
    click(browser, "actions")
    click(browser, "rec-hostile")
    assert no_alert(browser)
    tags = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "span.tag")]
    assert tags == webkit.HOSTILE_TAGS
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert webkit.HOSTILE_TAGS[0] in browser.find_element(By.CSS_SELECTOR, ".message").text
    screenshot(browser, shots, "hostile")
    click(browser, "history")
    assert no_alert(browser) and browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    browser.get(lab.url)
    click(browser, "actions")
    field = browser.find_element(By.NAME, "tags")
    field.send_keys(webkit.HOSTILE_TAGS[0])
    field.submit()
    assert table_names(browser) == ["rec-hostile"]
    assert no_alert(browser) and browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []


def test_the_timeline_is_drawn_and_a_click_travels_in_time(lab, browser, shots):
    browser.get(lab.url)
    svg = browser.find_element(By.CSS_SELECTOR, "main svg.timeline")
    assert svg.size["width"] > 500 and svg.size["height"] > 50
    bars = svg.find_elements(By.TAG_NAME, "rect")
    assert len(bars) >= 10  # days with commits, one colour per author
    assert len({bar.get_attribute("fill") for bar in bars}) == 3
    links = svg.find_elements(By.CSS_SELECTOR, "a")
    first_day = links[0]  # January 1st: the project, its settings, a template, 3 rats and rec-01
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", first_day)
    assert "?at=" in browser.current_url
    banner = browser.find_element(By.CSS_SELECTOR, ".travel").text
    assert banner.startswith("Time travel")
    counts = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".card .count")]
    assert counts[:4] == ["1", "3", "1", "1"]  # actions, entities, templates, modules then
    # The picture still shows every day up to now, the day shown shaded, to travel on from.
    svg = browser.find_element(By.CSS_SELECTOR, "main svg.timeline")
    assert len(svg.find_elements(By.CSS_SELECTOR, "a rect")) == len(bars)
    assert len(svg.find_elements(By.CSS_SELECTOR, "rect.here")) == 1
    screenshot(browser, shots, "home-back-in-time")


def test_time_travel_shows_the_old_value(lab, browser, shots):
    browser.get(lab.url)
    click(browser, "actions")
    click(browser, "rec-01")
    click(browser, "history")
    # The oldest commit of the probe: "as it was after this" shows depth 2.0 um.
    browser.find_elements(By.LINK_TEXT, "as it was after this")[-1].click()
    assert re.search(r"\?at=[0-9a-f]{40}$", browser.current_url)
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "2.0 um" in main and "3.5 um" not in main
    assert browser.find_element(By.CSS_SELECTOR, ".travel").text.startswith("Time travel")
    screenshot(browser, shots, "action-back-in-time")
    # The form takes a revision or a date.
    field = browser.find_element(By.NAME, "at")
    field.clear()
    field.send_keys("2026-01-10")
    field.submit()
    assert "2.0 um" in browser.find_element(By.TAG_NAME, "main").text
    click(browser, "Back to now")
    assert "3.5 um" in browser.find_element(By.TAG_NAME, "main").text
