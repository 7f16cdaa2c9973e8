"""The first page in a real browser: "loading model vN…" while the champion loads, empty
result fields until the first prediction, then the numbers.

Uses test_browser.py's headless Chromium (skipped the same way when it is missing).
"""

from __future__ import annotations

from pathlib import Path

from gradio_app.config import AppConfig
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.versions import registry
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import running_app
from tests.app.test_browser import browser  # noqa: F401 (fixture)
from tests.app.test_loading import TWEET, Gate, gate, gated_registry_holder  # noqa: F401
from tests.headless import needs_chromium

pytestmark = needs_chromium
SCORE = "#prediction-score textarea, #prediction-score input"
LATENCY = "#prediction-latency textarea, #prediction-latency input"


def test_the_page_says_loading_then_serves_and_fields_stay_empty_until_a_prediction(
    browser,  # noqa: F811 (the fixture imported above)
    registry_home: RegistryHome,
    gate: Gate,  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    champion = registry_home.v1
    score = float(
        load_predictor(registry.download_bundle(champion, tmp_path / "expected")).predict_proba(
            [TWEET]
        )[0]
    )
    holder = gated_registry_holder(registry_home, tmp_path / "cache", gate)
    config = AppConfig(reload_seconds=60)
    with running_app(registry_home.settings, config, holder=holder, wait_for_model=False) as app:
        assert gate.started.wait(30), "the poller never started loading the champion"
        browser.get(app.url)
        wait = WebDriverWait(browser, 60)
        wait.until(
            ec.text_to_be_present_in_element(
                (By.ID, "model-status"), f"Loading model v{champion.version}…"
            )
        )
        shown_score = browser.find_element(By.CSS_SELECTOR, SCORE)
        shown_latency = browser.find_element(By.CSS_SELECTOR, LATENCY)
        # Nothing predicted yet: empty, not a "0" that reads like an answer.
        assert (shown_score.get_attribute("value"), shown_latency.get_attribute("value")) == (
            "",
            "",
        )

        gate.release.set()
        # No reload: the page polls its status line while the model is on its way.
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-status"), "Serving"))
        assert shown_score.get_attribute("value") == ""
        assert shown_latency.get_attribute("value") == ""

        box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#tweet-input textarea")))
        box.send_keys(TWEET)
        browser.find_element(By.ID, "predict-button").click()
        wait.until(lambda _: shown_score.get_attribute("value") != "")
        assert shown_score.get_attribute("value") == f"{score:.4f}"
        wait.until(lambda _: shown_latency.get_attribute("value") != "")
        assert float(shown_latency.get_attribute("value")) > 0
        browser.get("about:blank")  # close the page's event stream before the server stops
