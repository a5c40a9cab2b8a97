"""The report in a real browser: Debian chromium (headless, network features off) opens
the index and the national page from file://; no request may leave the machine, the
headline table must be visible. Screenshots are saved in the test's temp dir."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_report import shared_report_run

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1800", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), (
        "Debian chromium + chromium-driver are needed: `make browser` "
        "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _requests(driver) -> list[str]:
    """Every URL the page asked for: DevTools network log plus the Resource Timing API."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")
    return urls


@pytest.mark.browser
@pytest.mark.parametrize("page", ["index.html", "national.html"])
def test_page_is_offline_and_headline_visible(browser, tmp_path_factory, tmp_path, page):
    (run, _, _), _ = shared_report_run(tmp_path_factory)
    path = run.out_dir / page
    browser.get_log("performance")  # drop earlier entries
    browser.get(path.as_uri())
    urls = _requests(browser)
    # file: and data: are the page and its embedded figures; chrome:/about: are the
    # browser's own internals. Anything else (http, https, ws, ftp...) leaves the machine.
    leaving = [u for u in urls if not u.split(":", 1)[0] in ("file", "data", "chrome", "about", "blob")]
    assert leaving == [], f"{page} requested {leaving[:5]}"
    tables = browser.find_elements("css selector", "table.povdyn-table")
    assert tables, "no headline table"
    headline = tables[0]
    assert headline.is_displayed()
    assert headline.size["height"] > 50 and headline.size["width"] > 300
    assert "Tỷ lệ hộ nghèo" in headline.text
    images = browser.find_elements("css selector", "img")
    assert all(browser.execute_script("return arguments[0].naturalWidth", im) > 0 for im in images)
    if page == "national.html":
        assert len(images) >= 6
        toc = browser.find_element("css selector", "nav.toc")
        assert toc.is_displayed() and "Các chỉ tiêu chính" in toc.text
    shot = tmp_path / f"{Path(page).stem}.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
