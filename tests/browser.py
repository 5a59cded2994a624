"""Debian's Chromium, headless, driven by Debian's chromedriver through selenium: started with
the flags a closed machine needs (no background networking, no component updates, no sync,
an empty profile) and stopped after the test."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .servers import require_binary

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-extensions", "--disable-default-apps",
)  # fmt: skip


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # selenium never looks for drivers on the network
    with tempfile.TemporaryDirectory(prefix="cachewatch-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = require_binary("chromium")
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(require_binary("chromedriver")))
        try:
            yield driver
        finally:
            driver.quit()


def emulate(driver: webdriver.Chrome, width: int, height: int) -> None:
    """Lay the page out as a device of this size (a phone below 700 px)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
    )


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Errors the page logged (script errors, CSP violations, failed loads) since last asked."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
