"""A real browser: headless Chromium types a tweet into the app and reads the answer.

Needs the Debian packages chromium and chromium-driver and the Python package selenium; the
test is skipped, saying which is missing, when they are not installed. SAVE_SCREENSHOT=1
also copies the screenshot to docs/screenshots/app.png for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gradio_app.config import AppConfig
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.settings import REPO_ROOT
from sentiment_assets.lib.versions import registry
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import running_app
from tests.headless import chromium, needs_chromium

TWEET = "what a great day, loving the sunshine and the new album"

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path: Path):
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def test_a_tweet_typed_in_the_browser_gets_its_label(
    browser, registry_home: RegistryHome, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    predictor = load_predictor(registry.download_bundle(registry_home.v1, tmp_path / "cache"))
    score = float(predictor.predict_proba([TWEET])[0])
    expected = "positive" if score >= 0.5 else "negative"

    with running_app(registry_home.settings, AppConfig(reload_seconds=60)) as running:
        browser.get(running.url)
        wait = WebDriverWait(browser, 30)
        box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#tweet-input textarea")))
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-status"), "Serving"))
        box.send_keys(TWEET)
        browser.find_element(By.ID, "predict-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "prediction-label"), expected))
        version = browser.find_element(
            By.CSS_SELECTOR, "#prediction-version textarea, #prediction-version input"
        )
        wait.until(lambda _: version.get_attribute("value") == registry_home.v1.version)

        # Rendered as: component title, the winning label, then each label with its share.
        lines = [
            line.strip()
            for line in browser.find_element(By.ID, "prediction-label").text.splitlines()
        ]
        assert lines[:2] == ["Sentiment", expected]
        assert f"{round(100 * score)}%" == lines[lines.index("positive", 2) + 1]
        screenshot = tmp_path / "app.png"
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
        if os.environ.get("SAVE_SCREENSHOT") == "1":
            target = REPO_ROOT / "docs" / "screenshots" / "app.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, target)
        browser.get("about:blank")  # close the page's event stream before the server stops
