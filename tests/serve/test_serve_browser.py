"""`sentiment serve` end to end: a small home is built, the three services are started on free
ports, headless Chromium reads the Dagster UI and the MLflow UI, then SIGINT stops everything.

What it guards (issue 15): each URL is printed only once its service answers; the `mlflow_run`
links in Dagster's metadata reach the MLflow UI that `sentiment serve` starts (one variable,
MLFLOW_UI_URL, sets both); no child process outlives the supervisor. SAVE_SCREENSHOT=1 copies
the screenshots to docs/screenshots/ (dagster.png, mlflow.png, sql.png) for the README.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from sentiment_assets.lib.core.processes import process_started_at
from sentiment_assets.lib.settings import REPO_ROOT
from tests.conftest import home_paths
from tests.headless import chromium, needs_chromium

MONTHS = ("2024-01-01", "2024-02-01")
PIPELINE_TIMEOUT_S = 1200
# Three servers starting at once on a loaded 2-core machine: the Dagster UI has taken minutes.
READY_TIMEOUT_S = 600
PAGE_TIMEOUT_S = 120
READY_LINE = re.compile(r"^\[serve\] (?P<name>[^:]+): (?P<url>http://\S+)\s+\(answered after")
ALL_READY = re.compile(r"^\[serve\] all (?P<n>\d+) services answer after (?P<s>[\d.]+) s")
SQL = (
    "SELECT model_family, trained_through, eval_month, n, round(accuracy, 3) AS accuracy, "
    "round(macro_f1, 3) AS macro_f1 FROM metrics.model_evaluations ORDER BY ALL"
)

pytestmark = [pytest.mark.slow, needs_chromium]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(root: int) -> set[int]:
    """Every live process below `root`, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that is not ours to reap."""
    return process_started_at(pid) is not None


class Output:
    """The supervisor's stdout, read on a thread so a full pipe never blocks it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern, timeout: float, process: subprocess.Popen):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := pattern.match(line):
                    return match
            assert process.poll() is None, "sentiment serve exited:\n" + self.text()
            time.sleep(0.5)
        raise AssertionError(f"no {pattern.pattern!r} in {timeout} s:\n" + self.text())

    def text(self) -> str:
        return "\n".join(self.lines[-60:])


@pytest.fixture
def browser(tmp_path: Path):
    with chromium(tmp_path / "chromium-profile", window_size="1400,1000") as driver:
        yield driver


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """Two synthetic months built by `sentiment pipeline`, with the MLflow links pointing at a
    free port: the one `sentiment serve` must then serve the MLflow UI on."""
    home = tmp_path_factory.mktemp("serve") / "home"
    env = {
        **os.environ,
        **home_paths(home),
        "MLFLOW_UI_URL": f"http://127.0.0.1:{free_port()}",
    }
    args = [arg for month in MONTHS for arg in ("--month", month)]
    built = subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT_S,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield home, env


def run_id_of(link: str) -> str:
    """The run id in an MLflow run link (…/runs/<id>?workflowType=…)."""
    return re.search(r"/runs/([0-9a-f]+)", link).group(1)


def latest_metadata(home: Path, asset: str, partition: str) -> dict[str, dg.MetadataValue]:
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
            limit=1,
        ).records
    assert records, f"no materialization of {asset} {partition}"
    return dict(records[0].asset_materialization.metadata)


def wait_for_text(browser, words: list[str], timeout: float = PAGE_TIMEOUT_S) -> str:
    """The page's visible text once it shows every word; closes Dagster's newsletter modal."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                button.click()
            text = browser.find_element(By.TAG_NAME, "body").text
        except WebDriverException:  # the page re-rendered under us: read it again
            text = ""
        if all(word in text for word in words):
            return text
        time.sleep(1)
    missing = [word for word in words if word not in text]
    raise AssertionError(f"page {browser.current_url} never showed {missing}:\n{text[:2000]}")


def close_assistant_panel(browser) -> None:
    """MLflow 3 opens an AI assistant over a third of the page: closed for the screenshot."""
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        if button.is_displayed():
            button.click()
            time.sleep(1)


def screenshot(browser, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("SAVE_SCREENSHOT") == "1":
        target = REPO_ROOT / "docs" / "screenshots" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_serve_answers_links_to_mlflow_and_stops_every_child(
    built_home: tuple[Path, dict[str, str]], browser, tmp_path: Path
) -> None:
    home, env = built_home
    mlflow_ui = env["MLFLOW_UI_URL"]
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "sentiment_assets.cli", "serve"),
            *("--dagster-port", str(free_port()), "--app-port", str(free_port())),
            *("--log-dir", str(tmp_path / "logs")),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own group, so a failing test can still kill whatever it left.
        start_new_session=True,
    )
    output = Output(serve)
    try:
        ready = output.wait_for(ALL_READY, READY_TIMEOUT_S, serve)
        urls = {
            m["name"]: m["url"]
            for line in output.lines
            if (m := READY_LINE.match(line)) is not None
        }
        print("\n" + "\n".join(line for line in output.lines if line.startswith("[serve]")))
        assert int(ready["n"]) == 4  # MLflow UI, Dagster webserver and daemon, app
        assert urls["MLflow UI"] == mlflow_ui, "MLflow must be served where the links point"
        children = descendants(serve.pid)
        assert children

        # The asset lineage: sentiment_model's neighbours span the whole graph.
        dagster_ui = urls["Dagster webserver"]
        browser.get(
            f"{dagster_ui}/assets/sentiment_model?view=lineage&lineageScope=neighbors&lineageDepth=3"
        )
        wait_for_text(browser, ["raw_tweets", "drift_report", "sentiment_model", "model_champion"])
        screenshot(browser, tmp_path, "dagster.png")

        # A partition's materialization metadata: every key the instance holds is rendered.
        month = MONTHS[-1]
        drift_metadata = latest_metadata(home, "drift_report", month)
        browser.get(f"{dagster_ui}/assets/drift_report?view=events&partition={month}")
        # The one-line drift summary reads as a finding, not as a broken pipeline.
        summary = drift_metadata["summary"].value
        assert "statistics beyond threshold" in summary or "not judged" in summary, summary
        wait_for_text(browser, [f"Partition {month} materialized", *drift_metadata, summary])

        # The MLflow links in Dagster's metadata (`mlflow_run` per family, the parent run)
        # answer from the MLflow UI served here. Found by value, not by exact key name. The
        # first month always trains (no champion yet); a later one only when it decides to.
        links = {
            key: value.value
            for key, value in latest_metadata(home, "sentiment_model", MONTHS[0]).items()
            if "mlflow" in key and isinstance(value, dg.UrlMetadataValue)
        }
        assert any("mlflow_run" in key for key in links), f"no mlflow_run link: {links}"
        for link in links.values():
            assert link.startswith(f"{mlflow_ui}/#/experiments/"), link
            assert httpx.get(link, timeout=30).status_code == 200
            # The page is a single-page app: ask its API too, so the run itself is known there.
            run = httpx.get(
                f"{mlflow_ui}/api/2.0/mlflow/runs/get",
                params={"run_id": run_id_of(link)},
                timeout=30,
            )
            assert run.status_code == 200, run.text
        link = next(link for key, link in sorted(links.items()) if "parent" not in key)
        run_id = run_id_of(link)
        browser.get(link)
        wait_for_text(browser, [run_id, "Parameters"])
        close_assistant_panel(browser)
        screenshot(browser, tmp_path, "mlflow.png")

        # `sentiment sql`, rendered as a terminal would show it, for the README.
        sql = subprocess.run(
            [sys.executable, "-m", "sentiment_assets.cli", "sql", SQL],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sql.returncode == 0, sql.stderr
        assert "tfidf_logreg" in sql.stdout
        page = (
            "<body style='background:#1e1e1e;color:#e0e0e0;margin:16px'><pre style="
            "'font:15px monospace;white-space:pre-wrap'>$ sentiment sql \""
            + html.escape(SQL)
            + '"\n\n'
            f"{html.escape(sql.stdout)}</pre></body>"
        )
        (tmp_path / "sql.html").write_text(page)
        browser.set_window_size(1000, 330)
        browser.get((tmp_path / "sql.html").as_uri())
        screenshot(browser, tmp_path, "sql.png")
        browser.get("about:blank")

        # Ctrl-C: the supervisor stops every service and every process they started.
        children |= descendants(serve.pid)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=120) == 0, output.text()
        left = {pid for pid in children if alive(pid)}
        assert not left, f"left running after SIGINT: {left}\n{output.text()}"
        assert "all services stopped" in output.text()
    finally:
        if serve.poll() is None:  # the test failed midway: still stop everything
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for pid in descendants(serve.pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                serve.kill()
                serve.wait()
