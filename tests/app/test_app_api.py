"""The running app through its HTTP API (gradio_client): predict, batch, feedback, history,
/metrics, /healthz and basic auth."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from gradio_app.config import AppConfig
from sentiment_assets.lib.data.batch_io import neutralise_formula
from sentiment_assets.lib.data.feedback import read_jsonl
from sentiment_assets.lib.models.model_bundle import load_predictor
from sentiment_assets.lib.store.warehouse import ensure_schema
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.publish import publish_history
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import Running, metric, metric_samples, running_app

MAX_ROWS = 100
MAX_BYTES = 20_000
TWEET = "loving the new phone, the camera is great and it works so well"


@pytest.fixture(scope="module")
def app(registry_home: RegistryHome) -> Iterator[Running]:
    config = AppConfig(
        reload_seconds=60, max_batch_rows=MAX_ROWS, max_upload_bytes=MAX_BYTES, max_text_chars=280
    )
    with running_app(registry_home.settings, config) as running:
        yield running


@pytest.fixture(scope="module")
def client(app: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = Client(
        app.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads"))
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def v1_predictor(registry_home: RegistryHome, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("v1-cache")
    return load_predictor(registry.download_bundle(registry_home.v1, cache))


def test_predict_returns_label_score_and_the_champions_version(
    client: Client, registry_home: RegistryHome, v1_predictor
) -> None:
    label, score, version, trained, latency, status = client.predict(TWEET, api_name="/predict")
    expected = float(v1_predictor.predict_proba([TWEET])[0])
    assert score == pytest.approx(expected, abs=1e-4)
    assert label["label"] == ("positive" if expected >= 0.5 else "negative")
    assert version == registry_home.v1.version
    assert trained == "2024-01"
    assert 0 < latency < 5000
    assert f"version {registry_home.v1.version}" in status


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the text is empty"), ("   ", "the text is empty"), ("x" * 281, "the limit is 280")],
)
def test_bad_texts_get_a_clear_error(client: Client, app: Running, text: str, message: str) -> None:
    before = metric(
        metric_samples(app.url), "sentiment_errors_total", endpoint="predict", kind="input"
    )
    with pytest.raises(AppError, match=message):
        client.predict(text, api_name="/predict")
    after = metric(
        metric_samples(app.url), "sentiment_errors_total", endpoint="predict", kind="input"
    )
    assert after == before + 1


def test_batch_csv_round_trips(
    client: Client, registry_home: RegistryHome, v1_predictor, tmp_path: Path
) -> None:
    texts = [
        'she said "no", then left :(',
        "best. day. ever!!! 😀",
        "meh, worst service, never again",
        *registry_home.corpus.texts[:40],
    ]
    source = tmp_path / "my tweets.csv"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(source, index=False)
    out_path, summary, preview = client.predict(handle_file(str(source)), api_name="/predict_batch")
    result = pd.read_csv(out_path, dtype={"model_version": str})
    # The input's own columns come back, so the scores can be joined to it by `id`.
    assert list(result.columns) == ["id", "text", "label", "score", "model_version"]
    assert result["id"].tolist() == list(range(len(texts)))
    # A tweet opening with a mention ("@user ...") is written behind a quote (OWASP's rule).
    assert result["text"].tolist() == [neutralise_formula(text) for text in texts]
    np.testing.assert_allclose(result["score"], v1_predictor.predict_proba(texts), atol=1e-9)
    assert (
        result["label"].tolist()
        == np.where(result["score"] >= 0.5, "positive", "negative").tolist()
    )
    assert set(result["model_version"]) == {registry_home.v1.version}
    assert f"Scored **{len(texts)}** rows of my tweets.csv" in summary
    assert len(preview["data"]) == 20


def test_batch_csv_neutralises_formulas(client: Client, tmp_path: Path) -> None:
    """A scored CSV opened in a spreadsheet must not run a formula from a tweet (OWASP)."""
    injected = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
    source = tmp_path / "injected.jsonl"
    rows = [{"id": -i, "text": text} for i, text in enumerate(injected)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out_path, _, _ = client.predict(handle_file(str(source)), api_name="/predict_batch")
    with open(out_path, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [row["text"] for row in written] == ["'" + text for text in injected]
    assert [row["id"] for row in written] == [str(-i) for i in range(len(injected))]
    assert all(0 <= float(row["score"]) <= 1 for row in written)


def test_batch_jsonl_round_trips(
    client: Client, registry_home: RegistryHome, tmp_path: Path
) -> None:
    source = tmp_path / "tweets.jsonl"
    texts = registry_home.corpus.texts[40:45]
    source.write_text("".join(json.dumps({"text": t, "user": "u"}) + "\n" for t in texts))
    out_path, _, _ = client.predict(handle_file(str(source)), api_name="/predict_batch")
    assert pd.read_csv(out_path)["text"].tolist() == [neutralise_formula(t) for t in texts]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("no_text.csv", "tweet,label\nhello,1\n", "no 'text' column"),
        # Gradio refuses the suffix itself, before our handler runs.
        ("notes.txt", "text\nhello\n", "Invalid file type"),
        ("empty.csv", "", "the file is empty"),
        ("header_only.csv", "text\n", "has a header but no rows"),
        ("broken.jsonl", '{"text": "ok"}\n{not json\n', "cannot be parsed as JSONL"),
        ("many.csv", "text\n" + "hi\n" * (MAX_ROWS + 1), f"more than the limit of {MAX_ROWS}"),
        (
            "long.csv",
            "text\nshort\n" + "y" * 300 + "\n",
            "longer than 280 characters (data rows 2)",
        ),
    ],
)
def test_bad_files_get_a_clear_error(
    client: Client, tmp_path: Path, name: str, content: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(content)
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(source)), api_name="/predict_batch")
    text = str(error.value)
    assert message in text
    # The user sees their own file name, never where the server keeps uploads.
    assert name in text or name.endswith(".txt")
    assert "/tmp" not in text and "gradio" not in text


def test_uploads_over_the_size_limit_are_refused(
    app: Running, client: Client, tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    source.write_text("text\n" + ("a fine tweet\n" * (MAX_BYTES // 10)))
    # gradio_client checks the limit the server announces before uploading ...
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {MAX_BYTES} bytes"):
        client.predict(handle_file(str(source)), api_name="/predict_batch")
    # ... and the server refuses it anyway from any other client.
    response = httpx.post(
        f"{app.url}/gradio_api/upload",
        files={"files": ("big.csv", source.read_bytes(), "text/csv")},
        timeout=10,
    )
    assert response.status_code == 413


def test_feedback_is_appended_with_the_prediction(
    client: Client, registry_home: RegistryHome
) -> None:
    feedback_dir = registry_home.home / "feedback"
    text = "the update broke everything, so annoying"
    label, score, version, *_ = client.predict(text, api_name="/predict")
    predicted = label["label"]
    other = "positive" if predicted == "negative" else "negative"
    with pytest.raises(AppError, match="already said"):
        client.predict(predicted, api_name="/feedback")
    message = client.predict(other, api_name="/feedback")
    assert f"recorded **{other}**" in message

    row = read_jsonl(feedback_dir / "feedback.jsonl")[-1]
    assert row["text"] == text
    assert row["predicted_label"] == predicted
    assert row["predicted_score"] == pytest.approx(score, abs=1e-4)
    assert row["corrected_label"] == other
    assert row["label"] == (1 if other == "positive" else 0)
    assert row["model_version"] == version
    assert row["trained_through"] == "2024-01-01"
    assert row["created_at"].endswith("Z")
    served = {r["prediction_id"]: r for r in read_jsonl(feedback_dir / "predictions.jsonl")}
    assert served[row["prediction_id"]]["text"] == text


def test_feedback_needs_a_prediction_first(app: Running) -> None:
    fresh = Client(app.url, verbose=False)  # a new session has no last prediction
    try:
        with pytest.raises(AppError, match="Predict a tweet first"):
            fresh.predict("positive", api_name="/feedback")
    finally:
        fresh.close()


def test_metrics_count_requests_and_name_the_model(client: Client, app: Running) -> None:
    before = metric_samples(app.url)
    for i in range(5):
        client.predict(f"{TWEET} #{i}", api_name="/predict")
    after = metric_samples(app.url)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("sentiment_requests_total", endpoint="predict", outcome="ok") == 5
    assert grew("sentiment_prediction_latency_seconds_count", endpoint="predict") == 5
    assert grew("sentiment_prediction_latency_seconds_sum", endpoint="predict") > 0
    by_label = sum(
        grew("sentiment_predictions_total", model_version="1", family="tfidf_logreg", label=label)
        for label in ("negative", "positive")
    )
    assert by_label == 5
    assert (
        metric(
            after,
            "sentiment_model_info",
            version="1",
            family="tfidf_logreg",
            trained_through="2024-01-01",
        )
        == 1
    )
    assert metric(after, "sentiment_model_version") == 1
    assert metric(after, "sentiment_model_reloads_total") >= 1


def test_json_api_predicts_and_checks_its_input(
    app: Running, registry_home: RegistryHome, v1_predictor
) -> None:
    texts = [TWEET, "awful, broken again, so annoyed"]
    before = metric_samples(app.url)
    response = httpx.post(f"{app.url}/api/predict", json={"texts": texts}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    np.testing.assert_allclose(body["scores"], v1_predictor.predict_proba(texts), atol=1e-9)
    assert body["labels"] == ["positive" if p >= 0.5 else "negative" for p in body["scores"]]
    assert (body["model_version"], body["trained_through"]) == ("1", "2024-01-01")
    for payload, message in [
        ({"texts": []}, "send at least one text"),
        ({"texts": ["ok", " "]}, "texts[1] is empty"),
        ({"texts": ["z" * 281]}, "texts[0] is 281 characters long; the limit is 280"),
        ({"texts": ["hi"] * 1001}, "1001 texts; at most 1000 per request"),
    ]:
        refused = httpx.post(f"{app.url}/api/predict", json=payload, timeout=10)
        assert (refused.status_code, refused.json()["error"]) == (422, message)
    after = metric_samples(app.url)
    assert (
        metric(after, "sentiment_requests_total", endpoint="api", outcome="ok")
        - metric(before, "sentiment_requests_total", endpoint="api", outcome="ok")
        == 1
    )
    assert (
        metric(after, "sentiment_errors_total", endpoint="api", kind="input")
        - metric(before, "sentiment_errors_total", endpoint="api", kind="input")
        == 4
    )


def test_healthz_names_the_served_version(app: Running) -> None:
    body = httpx.get(f"{app.url}/healthz", timeout=10).json()
    assert body["status"] == "ok"
    assert (body["model_version"], body["family"]) == ("1", "tfidf_logreg")
    assert body["runtime"] == "scikit-learn"
    assert body["last_error"] is None


def test_history_reads_the_published_snapshot(client: Client, registry_home: RegistryHome) -> None:
    published = registry_home.settings.published_dir
    con = duckdb.connect()  # in memory: the snapshot is written the way the pipeline does it
    ensure_schema(con)
    now = pd.Timestamp("2024-04-02 10:00")
    evaluations = pd.DataFrame(
        [
            ("tfidf_logreg", "1", date(2024, 1, 1), date(2024, 2, 1), 0.81, 0.80, now),
            ("tfidf_logreg", "4", date(2024, 2, 1), date(2024, 3, 1), 0.70, 0.69, now),
            ("embedding_logreg", "2", date(2024, 1, 1), date(2024, 2, 1), 0.86, 0.85, now),
            ("embedding_logreg", "5", date(2024, 2, 1), date(2024, 3, 1), 0.83, 0.83, now),
        ],
        columns=[
            "model_family",
            "model_version",
            "trained_through",
            "eval_month",
            "accuracy",
            "macro_f1",
            "created_at",
        ],
    ).assign(eval_set="next_month", n=200)
    con.register("e", evaluations)
    con.execute("INSERT INTO metrics.model_evaluations BY NAME SELECT * FROM e")
    drift = pd.DataFrame(
        {
            "month": [date(2024, 2, 1), date(2024, 3, 1)],
            "reference": "champion",
            "statistic": "label_prior_psi",
            "kind": "label",
            "value": [0.02, 0.31],
            "threshold": 0.2,
            "drifted": [False, True],
            "created_at": now,
        }
    )
    con.register("d", drift)
    con.execute("INSERT INTO metrics.drift_reports BY NAME SELECT * FROM d")
    con.execute(
        "INSERT INTO metrics.promotions (model_version, model_family, trained_through, decision, "
        "champion_score, challenger_score, created_at) VALUES "
        "('2', 'embedding_logreg', '2024-01-01', 'promoted', NULL, 0.85, '2024-02-02 08:00')"
    )
    publish_history(con, published)
    con.close()

    history = client.predict(api_name="/history")
    summary, accuracy, macro_f1, decisions, drift_note, plot, drift_table, promotions = history
    assert "Snapshot published" in summary
    points = pd.DataFrame(accuracy["data"], columns=accuracy["columns"])
    assert sorted(points["model_family"].unique()) == ["embedding_logreg", "tfidf_logreg"]
    assert len(points) == 4
    assert sorted(points["accuracy"]) == [0.70, 0.81, 0.83, 0.86]
    f1_points = pd.DataFrame(macro_f1["data"], columns=macro_f1["columns"])
    assert sorted(f1_points["macro_f1"]) == [0.69, 0.80, 0.83, 0.85]
    assert decisions is None, "no training decision was published"
    assert "1 of 2 month × statistic checks over their threshold" in drift_note
    assert plot is not None
    assert len(drift_table["data"]) == 2
    assert promotions["data"][0][1:4] == ["promoted", "2", "embedding_logreg"]
    # The app read the snapshot; no warehouse file was ever created next to it.
    assert not (registry_home.home / "warehouse.duckdb").exists()


def test_basic_auth_guards_everything_but_healthz(registry_home: RegistryHome) -> None:
    config = AppConfig(reload_seconds=60, user="ana", password="s3cret")
    with running_app(registry_home.settings, config) as running:
        for path in ("/", "/metrics", "/gradio_api/info", "/api/predict"):
            response = httpx.get(f"{running.url}{path}", timeout=10)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Basic")
        wrong = httpx.get(f"{running.url}/metrics", auth=("ana", "nope"), timeout=10)
        assert wrong.status_code == 401
        assert httpx.get(f"{running.url}/healthz", timeout=10).status_code == 200
        assert (
            httpx.get(f"{running.url}/metrics", auth=("ana", "s3cret"), timeout=10).status_code
            == 200
        )
        token = base64.b64encode(b"ana:s3cret").decode()
        authed = Client(running.url, verbose=False, headers={"Authorization": f"Basic {token}"})
        try:
            _, _, version, *_ = authed.predict(TWEET, api_name="/predict")
        finally:
            authed.close()
        assert version == registry_home.v1.version
