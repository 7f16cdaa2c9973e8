"""The Dagster UI of a small healthy home, read by headless Chromium (issue 26).

Two synthetic months, the second one drifting (a drift finding, a drift retrain and its
promotion gate), built by `sentiment pipeline`; then `dagster-webserver` on that home alone.

What it guards: the UI offers only months with data (the partitions end at the synthetic
source's last month, so a click cannot build a month the source does not have), and a healthy
home shows nothing red: no failed run, no check failed at ERROR severity, no red lineage node,
no failed partition. A drift finding or a rejected challenger is a warning, never a failure.
Screenshots of each page land in the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from sentiment_assets.lib.settings import REPO_ROOT
from sentiment_assets.ops.orchestrator import dagster_ready
from tests.conftest import home_paths
from tests.headless import chromium, needs_chromium
from tests.serve.test_serve_browser import free_port, wait_for_text

MONTHS = ("2024-01-01", "2024-02-01")
# Two months of the synthetic source, small; the second (index 1) drifts strongly.
SMALL_SOURCE = {
    "SENTIMENT_SOURCE": "synthetic",
    "SENTIMENT_SYNTHETIC_MONTHS": str(len(MONTHS)),
    # Enough for a drift verdict: 200 rows a side once the 20 % holdout and rejects are out.
    "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "300",
    "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "1",
}
PIPELINE_TIMEOUT_S = 900
READY_TIMEOUT_S = 300
# The assets upstream of model_champion, each a node of its lineage.
CHAMPION_LINEAGE = (
    "raw_tweets",
    "stg_tweets",
    "tweets_clean",
    "tweet_embeddings",
    "drift_report",
    "sentiment_model",
    "model_challenger",
    "model_champion",
)
RED = ("color-background-red", "color-accent-red")

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("healthy") / "home"
    env = {**os.environ, **home_paths(home), **SMALL_SOURCE}
    env.pop("SENTIMENT_MONTHS", None)  # the partitions must come from the source's months
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "pipeline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT_S,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    print(f"\nbuilt {len(MONTHS)} months in {time.monotonic() - started:.0f} s")
    return home, env


@pytest.fixture(scope="module")
def dagster_ui(built_home: tuple[Path, dict[str, str]], tmp_path_factory) -> Iterator[str]:
    """`dagster-webserver` on the built home (no daemon: nothing may run while we look)."""
    _, env = built_home
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                *("-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1]),
                *("-w", str(REPO_ROOT / "workspace.yaml")),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not dagster_ready(url):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.fixture
def browser(tmp_path: Path):
    with chromium(tmp_path / "chromium-profile", window_size="1600,2400") as driver:
        yield driver


def loaded_partition_keys(env: dict[str, str]) -> list[str]:
    """raw_tweets' partition keys as the home's Definitions load them, in a fresh process:
    this one's partitions were fixed by the test session's own settings."""
    script = (
        "import json; from sentiment_assets.definitions import defs; "
        "print(json.dumps(defs().resolve_assets_def('raw_tweets').partitions_def"
        ".get_partition_keys()))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return json.loads(loaded.stdout.splitlines()[-1])


def test_only_months_with_data_can_be_launched(
    built_home: tuple[Path, dict[str, str]], dagster_ui: str, browser, tmp_path: Path
) -> None:
    _, env = built_home
    assert loaded_partition_keys(env) == list(MONTHS)

    browser.get(f"{dagster_ui}/assets/raw_tweets?view=partitions")
    page = wait_for_text(browser, [*MONTHS, f"{len(MONTHS)} Partitions Selected"])
    browser.save_screenshot(str(tmp_path / "partitions.png"))
    assert "2024-03-01" not in page and "Missing (0)" in page, page

    # The launch dialog: the range it offers ends at the last month with data, and its
    # "Latest" choice is that month.
    click(browser, "//button[starts-with(normalize-space(), 'Materialize')]")
    wait_for_text(browser, ["Launch runs to materialize raw_tweets", "Latest"])
    click(browser, "//*[@role='dialog']//button[normalize-space()='Latest']")
    assert launch_selection(browser, MONTHS[-1]) == MONTHS[-1]
    browser.save_screenshot(str(tmp_path / "launch-latest.png"))
    click(browser, "//*[@role='dialog']//button[normalize-space()='All']")
    every_month = f"[{MONTHS[0]}...{MONTHS[-1]}]"
    assert launch_selection(browser, every_month) == every_month
    browser.save_screenshot(str(tmp_path / "launch-all.png"))


def click(browser, xpath: str, timeout: float = 30) -> None:
    """Click once no modal lies over the page; Dagster's newsletter prompt, which may open
    after the page has shown its text, is skipped."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        try:
            browser.find_element(By.XPATH, xpath).click()
            return
        except ElementClickInterceptedException:
            if time.monotonic() > deadline:
                raise
            for skip in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                skip.click()
            time.sleep(0.5)


def launch_selection(browser, expected: str, timeout: float = 30) -> str:
    """The launch dialog's partition selection once it reads `expected` (else the last read)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        field = browser.find_element(By.CSS_SELECTOR, "[role=dialog] input:not([type=checkbox])")
        value = field.get_attribute("value")
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def failed_checks_by_severity(home: Path) -> dict[str, list[str]]:
    """Every failed asset check evaluation of the instance, as "asset:check month", by
    severity; and every run that did not succeed under "runs"."""
    found: dict[str, list[str]] = {"runs": []}
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        records = instance.get_run_records()
        assert records, "the pipeline left no run in the instance"
        for record in records:
            run = record.dagster_run
            if run.status != dg.DagsterRunStatus.SUCCESS:
                found["runs"].append(f"{run.job_name} {run.run_id[:8]}: {run.status.value}")
            evaluations = instance.all_logs(
                run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            )
            for event in evaluations:
                check = event.dagster_event.event_specific_data
                if not check.passed:
                    name = f"{check.asset_key.to_user_string()}:{check.check_name}"
                    label = f"{name} {run.tags.get('dagster/partition')}"
                    found.setdefault(check.severity.value, []).append(label)
    return found


def lineage_node_styles(browser) -> dict[str, str]:
    """Each asset node of the lineage on screen with its style (colour variables)."""
    from selenium.webdriver.common.by import By

    nodes = {}
    for box in browser.find_elements(By.CSS_SELECTOR, "[class*='minimalAssetNodeBox']"):
        nodes[box.text.strip()] = box.get_attribute("style")
    return nodes


def test_a_healthy_home_shows_no_red(
    built_home: tuple[Path, dict[str, str]], dagster_ui: str, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    home, _ = built_home
    failed = failed_checks_by_severity(home)
    assert failed["runs"] == [], failed
    assert failed.get("ERROR", []) == [], failed
    # The drifting month is found drifting, and says so as a warning.
    assert f"drift_report:drift_combined {MONTHS[1]}" in failed.get("WARN", []), failed
    print("\nwarnings (drift findings, gate rejections):", *failed["WARN"], sep="\n  ")

    browser.get(f"{dagster_ui}/runs")
    runs_page = wait_for_text(browser, ["Success", "__ephemeral_asset_job__"])
    browser.save_screenshot(str(tmp_path / "runs.png"))
    assert "Failure" not in runs_page and "Canceled" not in runs_page, runs_page

    browser.get(
        f"{dagster_ui}/assets/model_champion?view=lineage&lineageScope=upstream&lineageDepth=12"
    )
    wait_for_text(browser, list(CHAMPION_LINEAGE))
    time.sleep(3)  # node colours arrive with the status query, after the names
    browser.save_screenshot(str(tmp_path / "lineage.png"))
    nodes = lineage_node_styles(browser)
    assert set(CHAMPION_LINEAGE) <= set(nodes), nodes
    assert not {name: style for name, style in nodes.items() if any(r in style for r in RED)}

    # The catalog: each partitioned asset's count of failed partitions is 0.
    browser.get(f"{dagster_ui}/assets")
    wait_for_text(browser, ["model_champion", "raw_tweets", f"{len(MONTHS)} partitions"])
    browser.save_screenshot(str(tmp_path / "catalog.png"))
    failure_counts = [
        icon.find_element(By.XPATH, "..").text
        for icon in browser.find_elements(By.CSS_SELECTOR, "[aria-label='partition_failure']")
    ]
    assert len(failure_counts) >= len(CHAMPION_LINEAGE), failure_counts
    assert set(failure_counts) == {"0"}, failure_counts
