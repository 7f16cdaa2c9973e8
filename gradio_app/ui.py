"""The Gradio Blocks: prediction, batch scoring, feedback and the model's history.

Handlers stay thin: the model comes from the ModelHolder, history from the published
snapshot, storage from the FeedbackStore. Every user-facing failure is a gr.Error with a
message saying what to fix; internal errors are logged and counted, never shown as a trace.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from gradio_app import history
from gradio_app.config import AppConfig
from gradio_app.feedback import FeedbackStore, ServedPrediction
from gradio_app.model_holder import HolderStatus, ModelHolder, NoModelError, Prediction
from gradio_app.telemetry import Telemetry
from sentiment_assets.lib.core.months import date_or_none
from sentiment_assets.lib.data.batch_io import (
    InputFileError,
    read_texts,
    with_predictions,
    write_predictions,
)
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.stats.calibration import reliability_figure

log = logging.getLogger(__name__)

# Rows scored per call in a batch: small enough that single-tweet requests interleave with a
# big upload (the model lock is taken per chunk), large enough to batch the encoder well.
BATCH_CHUNK = 256
PREVIEW_ROWS = 20
OUTPUT_MAX_AGE_SECONDS = 15 * 60
# How often an open page re-reads the status line while a model loads.
STATUS_POLL_SECONDS = 2.0
# Most month labels on a drift panel's x axis; beyond that every n-th month is labelled.
MAX_MONTH_LABELS = 12
# P(positive) and latency as the page shows them: the hidden Numbers' precision, and empty
# (not "0") for a missing value.
SHOW_NUMBERS_JS = """(score, latency) => [
    score == null ? "" : Number(score).toFixed(4),
    latency == null ? "" : Number(latency).toFixed(2),
]"""


@dataclass
class AppContext:
    settings: Settings
    config: AppConfig
    holder: ModelHolder
    telemetry: Telemetry
    feedback: FeedbackStore
    workdir: Path


class UserError(ValueError):
    """Input the user must fix: shown as is, counted as an input error."""


def _guard(ctx: AppContext, endpoint: str) -> Callable:
    """Turn exceptions into gr.Error messages and error counts, one policy for all handlers."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except UserError as error:
                ctx.telemetry.observe_error(endpoint, "input")
                raise gr.Error(str(error), print_exception=False) from None
            except NoModelError as error:
                ctx.telemetry.observe_error(endpoint, "no_model")
                raise gr.Error(str(error), print_exception=False) from None
            except gr.Error:
                ctx.telemetry.observe_error(endpoint, "input")
                raise
            except Exception as error:
                log.exception("%s failed", endpoint)
                ctx.telemetry.observe_error(endpoint, "internal")
                raise gr.Error(
                    f"internal error ({type(error).__name__}); it was logged", print_exception=False
                ) from None

        return wrapper

    return decorate


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _month(day: date | None) -> str:
    return f"{day:%Y-%m}" if day else "?"


def status_markdown(status: HolderStatus) -> str:
    lines = []
    served = status.served
    loading = status.loading
    if served is None and loading is not None:
        lines.append(
            f"⏳ **Loading model v{loading.version}…** ({loading.family}, trained through "
            f"{_month(loading.trained_through)}). Predictions start as soon as it is ready; "
            "this line updates by itself."
        )
    elif served is None and status.starting:
        lines.append(
            "⏳ **Loading the model…** (looking up the champion in the registry; this line "
            "updates by itself)."
        )
    elif served is None:
        lines.append("**No model is being served yet.**")
    else:
        lines.append(
            f"Serving **version {served.version}** ({served.family}, trained through "
            f"{_month(served.trained_through)}), loaded {_when(status.loaded_at)} "
            f"in {status.load_seconds:.1f} s."
        )
        if loading is not None:
            lines.append(
                f"Loading version {loading.version} in the background; version "
                f"{served.version} answers until it is ready."
            )
    if status.failure is not None:
        keep = f" Still serving version {served.version}." if served else ""
        lines.append(f"⚠️ {status.failure.message}.{keep}")
    lines.append(f"Registry last checked {_when(status.last_check_at)}.")
    return "  \n".join(lines)


def _check_text(text: str | None, limit: int) -> str:
    if text is None or not str(text).strip():
        raise UserError("Type a tweet first: the text is empty.")
    text = str(text)
    if len(text) > limit:
        raise UserError(f"The text is {len(text)} characters long; the limit is {limit}.")
    return text


def predict_one(ctx: AppContext, text: str | None) -> tuple:
    text = _check_text(text, ctx.config.max_text_chars)
    prediction = ctx.holder.predict([text])
    ctx.telemetry.observe_prediction(
        "predict",
        prediction.version,
        prediction.family,
        prediction.labels,
        prediction.latency_ms / 1000,
    )
    served = ctx.feedback.log_prediction(text, prediction)
    score = prediction.scores[0]
    return (
        {"positive": score, "negative": 1.0 - score},
        round(score, 6),
        prediction.version,
        _month(prediction.trained_through),
        round(prediction.latency_ms, 3),
        served,
        status_markdown(ctx.holder.status()),
    )


def give_feedback(ctx: AppContext, served: ServedPrediction | None, corrected: str | None) -> str:
    if served is None:
        raise UserError("Predict a tweet first: there is no prediction to correct.")
    if corrected not in ("negative", "positive"):
        raise UserError("Pick the right label (negative or positive) first.")
    try:
        record = ctx.feedback.log_feedback(served, corrected)
    except ValueError as error:
        raise UserError(str(error)) from None
    ctx.telemetry.feedback.labels(corrected).inc()
    ctx.telemetry.requests.labels("feedback", "ok").inc()
    return (
        f"Thanks: recorded **{record['corrected_label']}** for the prediction of version "
        f"{record['model_version']} (feedback id `{record['feedback_id'][:8]}`). The pipeline's "
        "user_feedback asset adds it to a month's training data."
    )


def _clean_old_outputs(workdir: Path) -> None:
    cutoff = time.time() - OUTPUT_MAX_AGE_SECONDS
    for path in workdir.glob("predictions-*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass  # another request pruned it first


def score_file(ctx: AppContext, upload: str | None) -> tuple[str, str, pd.DataFrame]:
    if not upload:
        raise UserError("Upload a .csv or .jsonl file with a 'text' column first.")
    # Only the temp file Gradio wrote is opened; the user's own name is for messages alone.
    path = Path(upload)
    name = path.name
    size = path.stat().st_size
    limit = ctx.config.max_upload_bytes
    if size > limit:
        raise UserError(f"{name} is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB.")
    try:
        frame = read_texts(path, max_rows=ctx.config.max_batch_rows)
    except InputFileError as error:
        raise UserError(str(error).replace(str(path), name)) from None
    texts = frame["text"].tolist()
    too_long = [i + 1 for i, t in enumerate(texts) if len(t) > ctx.config.max_text_chars]
    if too_long:
        shown = ", ".join(map(str, too_long[:5])) + (" ..." if len(too_long) > 5 else "")
        raise UserError(
            f"{name}: {len(too_long)} row(s) longer than {ctx.config.max_text_chars} characters "
            f"(data rows {shown}); shorten or drop them."
        )
    served = ctx.holder.current()  # one version for the whole file, whatever the alias does
    scores: list[float] = []
    labels: list[str] = []
    latency_ms = 0.0
    for start in range(0, len(texts), BATCH_CHUNK):
        part = served.predict(texts[start : start + BATCH_CHUNK])
        scores.extend(part.scores)
        labels.extend(part.labels)
        latency_ms += part.latency_ms
    prediction = Prediction(
        labels,
        scores,
        served.info.version,
        served.info.family,
        served.info.trained_through,
        latency_ms,
    )
    ctx.telemetry.observe_prediction(
        "batch", prediction.version, prediction.family, labels, latency_ms / 1000
    )
    ctx.feedback.log_batch(name, len(texts), prediction)
    predictions = pd.DataFrame(
        {"label": labels, "score": scores, "model_version": served.info.version}
    )
    output = with_predictions(frame, predictions)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    _clean_old_outputs(ctx.workdir)
    out = ctx.workdir / f"predictions-{uuid.uuid4().hex[:12]}.csv"
    write_predictions(output, out, "csv")
    positive = labels.count("positive")
    summary = (
        f"Scored **{len(texts)}** rows of {name} with version {served.info.version} "
        f"({served.info.family}) in {latency_ms:.0f} ms: {positive} positive, "
        f"{len(texts) - positive} negative."
    )
    return str(out), summary, output.head(PREVIEW_ROWS)


def drift_figure(drift: pd.DataFrame) -> Figure | None:
    """Small multiples: one panel per statistic, its value per month against its threshold.

    Every panel's x axis is labelled with months (YYYY-MM), at most MAX_MONTH_LABELS of them.
    """
    if drift.empty:
        return None
    statistics = sorted(drift["statistic"].unique())
    # Month starts (the pipeline's monthly partitions), whatever day a report was filed under.
    months = pd.to_datetime(drift["month"]).dt.to_period("M").dt.to_timestamp()
    # Half a month either side: a single month still gets its tick, the end points their room.
    limits = (months.min() - pd.Timedelta(days=15), months.max() + pd.Timedelta(days=15))
    # Every month from the first on, or every n-th one when there are more than fit.
    every = pd.date_range(months.min(), months.max(), freq="MS")
    ticks = list(every[:: max(1, math.ceil(len(every) / MAX_MONTH_LABELS))])
    figure = Figure(figsize=(9, 1.9 * len(statistics) + 0.4), layout="constrained")
    axes = figure.subplots(len(statistics), 1, sharex=True, squeeze=False)[:, 0]
    for axis, statistic in zip(axes, statistics, strict=True):
        rows = drift[drift["statistic"] == statistic].sort_values("month")
        axis.plot(rows["month"], rows["value"], marker="o", color="tab:blue", label="value")
        axis.plot(rows["month"], rows["threshold"], ls="--", color="tab:gray", label="threshold")
        hot = rows[rows["drifted"]]
        axis.scatter(hot["month"], hot["value"], color="tab:red", zorder=3, label="drifted")
        kind = rows["kind"].dropna().iloc[0] if rows["kind"].notna().any() else ""
        axis.set_title(f"{statistic} ({kind})" if kind else statistic, fontsize=10, loc="left")
        axis.grid(alpha=0.3)
        # Matplotlib's automatic date ticks fall on weeks ("2024-02-08") between monthly points,
        # and sharex leaves the upper panels without labels: one tick per month, on every panel.
        axis.set_xlim(*limits)
        axis.set_xticks(ticks)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
        axis.xaxis.set_minor_locator(NullLocator())
        axis.tick_params(axis="x", labelbottom=True, labelsize=8)
    axes[0].legend(loc="upper left", fontsize=8, ncols=3)
    return figure


# Marker per decision: a month that trained stands out, a kept one is a quiet dot.
DECISION_MARKERS = {"train": ("^", "tab:green"), "keep": ("o", "tab:gray")}


def decision_figure(decisions: pd.DataFrame) -> Figure | None:
    """The policy's decision per month (train or keep markers) on the champion's accuracy on
    that month, the number it decided from (hollow: estimated, no labels yet)."""
    if decisions.empty:
        return None
    figure = Figure(figsize=(9, 2.6), layout="constrained")
    axis = figure.subplots()
    scored = decisions.dropna(subset=["accuracy"])
    axis.plot(scored["month"], scored["accuracy"], color="tab:blue", alpha=0.5, label="accuracy")
    # A month without a champion to score (the first) sits on the axis floor.
    floor = min(0.5, float(scored["accuracy"].min())) if not scored.empty else 0.5
    for decision, (marker, color) in DECISION_MARKERS.items():
        rows = decisions[decisions["decision"] == decision]
        estimated = rows["accuracy_kind"] == "estimated"
        axis.scatter(
            rows["month"],
            rows["accuracy"].fillna(floor),
            marker=marker,
            s=70,
            edgecolors=color,
            facecolors=[("none" if e else color) for e in estimated],
            zorder=3,
            label=decision,
        )
    axis.set_ylabel("champion accuracy")
    axis.set_title("Training decisions per month", fontsize=10, loc="left")
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    axis.set_xticks(list(decisions["month"]))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.tick_params(axis="x", labelsize=8)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=8, ncols=3)
    return figure


def read_history(ctx: AppContext) -> tuple:
    snapshot = history.read_snapshot(ctx.settings.published_dir)
    metrics = history.metric_history(snapshot.evaluations)
    drift = history.drift_history(snapshot.drift)
    promotions = history.promotion_table(snapshot.promotions)
    decisions = history.decision_history(snapshot.decisions)
    lines = []
    if snapshot.published_at is not None:
        lines.append(f"Snapshot published {snapshot.published_at:%Y-%m-%d %H:%M:%S} UTC.")
    champion = snapshot.champion
    if champion:
        lines.append(
            f"Champion per the pipeline: version {champion.get('version')} "
            f"({champion.get('family')}, trained through {_month(date_or_none(champion.get('trained_through')))}), "
            f"decision {champion.get('decision')} at {champion.get('promoted_at')}."
        )
    lines.extend(f"⚠️ {note}" for note in snapshot.notes)
    if metrics.empty:
        lines.append("No forward-chained evaluations yet (they start with the second month).")
    drift_note = (
        "No drift reports yet: the drift_report asset writes one per month once it runs."
        if drift.empty
        else f"Drift statistics per month against their thresholds (dashed): "
        f"{int(drift['drifted'].sum())} of {len(drift)} month × statistic checks over "
        "their threshold (red points)."
    )
    drift_table = (
        drift.assign(
            month=drift["month"].dt.strftime("%Y-%m"),
            value=drift["value"].round(4),
            threshold=drift["threshold"].round(4),
        )
        if not drift.empty
        else drift
    )
    # Months as "YYYY-MM" categories: a time axis would tick by week between monthly points.
    if not metrics.empty:
        metrics = metrics.assign(eval_month=metrics["eval_month"].dt.strftime("%Y-%m"))
    return (
        "  \n".join(lines),
        metrics,
        metrics,
        decision_figure(decisions),
        drift_note,
        drift_figure(drift),
        drift_table,
        promotions if not promotions.empty else None,
    )


def read_monitoring(ctx: AppContext) -> tuple:
    """What the pipeline knows before labels, and where the champion is weak: estimated vs
    realised accuracy, the champion's reliability diagram, the slices' scores."""
    snapshot = history.read_snapshot(ctx.settings.published_dir)
    estimates = history.estimated_vs_realised(snapshot.evaluations)
    if estimates.empty:
        note = "No estimates yet: model_evaluation writes one per version and month."
    else:
        judged = estimates[estimates["realised_accuracy"].notna()]
        note = (
            f"Accuracy expected from calibrated probabilities (before labels, 95% interval) "
            f"and the realised accuracy once labels exist: {len(estimates)} estimates, "
            f"{len(judged)} with labels, mean |error| "
            f"{judged['error'].abs().mean():.3f}."
            if len(judged)
            else f"{len(estimates)} estimates, none with labels yet."
        )
    champion = (snapshot.champion or {}).get("version")
    reliability = history.reliability_of(snapshot.calibrations, champion)
    figure = None
    if reliability is not None:
        who = "champion" if reliability.version == str(champion) else "newest version"
        figure = reliability_figure(
            reliability.before,
            reliability.after,
            reliability.calibration,
            f"{who} v{reliability.version} ({reliability.family})\n"
            f"holdout reliability, trained through {reliability.trained_through}",
        )
    slices = history.slice_history(snapshot.slices)
    return note, estimates, figure, slices if not slices.empty else None


def check_now(ctx: AppContext) -> str:
    # Not blocking: while the poller loads a model (tens of seconds) the click answers at
    # once with "loading model vN…" instead of hanging until the load is over.
    ctx.holder.refresh(force=True, blocking=False)
    return status_markdown(ctx.holder.status())


def poll_status(ctx: AppContext) -> tuple[str, gr.Timer]:
    """The status line, and the timer that re-reads it kept running only while a model is
    on its way: the page then shows "Serving ..." without a reload, and stops polling."""
    status = ctx.holder.status()
    return status_markdown(status), gr.Timer(active=status.pending)


def build_blocks(ctx: AppContext) -> gr.Blocks:
    config = ctx.config
    with gr.Blocks(
        title="Tweet sentiment", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as blocks:
        gr.Markdown("# Tweet sentiment\nThe registry's champion, reloaded when the alias moves.")
        with gr.Row():
            status = gr.Markdown(elem_id="model-status")
            check = gr.Button("Check the registry now", size="sm", scale=0)
        # Re-reads the status line while a model loads; poll_status switches it on and off.
        status_timer = gr.Timer(STATUS_POLL_SECONDS, active=False)
        last = gr.State(None)
        with gr.Tab("Predict"):
            text = gr.Textbox(
                label="Tweet",
                lines=3,
                max_length=config.max_text_chars,
                placeholder="Type a tweet, e.g. 'loving the new update, works great'",
                elem_id="tweet-input",
            )
            predict_button = gr.Button("Predict", variant="primary", elem_id="predict-button")
            with gr.Row():
                label = gr.Label(label="Sentiment", num_top_classes=2, elem_id="prediction-label")
                with gr.Column():
                    # gr.Number shows an empty value as "0", which reads as a prediction. The
                    # numbers the API returns live in hidden Numbers; the page shows them in
                    # read-only text boxes that stay empty until the first prediction.
                    score = gr.Number(precision=4, visible="hidden", elem_id="prediction-p")
                    latency = gr.Number(precision=2, visible="hidden", elem_id="prediction-ms")
                    score_shown = gr.Textbox(
                        label="P(positive)", interactive=False, elem_id="prediction-score"
                    )
                    version = gr.Textbox(label="Model version", elem_id="prediction-version")
                    trained = gr.Textbox(label="Trained through (month)")
                    latency_shown = gr.Textbox(
                        label="Model latency (ms)", interactive=False, elem_id="prediction-latency"
                    )
            with gr.Accordion("Wrong answer? Correct it", open=False):
                corrected = gr.Radio(["negative", "positive"], label="The right label")
                feedback_button = gr.Button("Mark the last prediction wrong")
                feedback_result = gr.Markdown()
        with gr.Tab("Batch"):
            gr.Markdown(
                f"A .csv or .jsonl file with a `text` column: at most "
                f"{config.max_upload_bytes / 2**20:.0f} MB, {config.max_batch_rows:,} rows and "
                f"{config.max_text_chars} characters per text. You get a CSV with "
                "text, label, score and model_version."
            )
            upload = gr.File(label="Tweets file", file_types=[".csv", ".jsonl"])
            score_button = gr.Button("Score the file", variant="primary")
            batch_summary = gr.Markdown()
            result_file = gr.File(label="Predictions (CSV)", interactive=False)
            preview = gr.Dataframe(
                label=f"First {PREVIEW_ROWS} rows",
                headers=["text", "label", "score", "model_version"],
                interactive=False,
            )
        with gr.Tab("History"):
            refresh = gr.Button("Refresh from the published snapshot", size="sm")
            summary = gr.Markdown()
            with gr.Row():
                accuracy = gr.LinePlot(
                    x="eval_month",
                    y="accuracy",
                    color="model_family",
                    title="Accuracy on the next month",
                    x_title="evaluation month",
                    sort="x",
                )
                macro_f1 = gr.LinePlot(
                    x="eval_month",
                    y="macro_f1",
                    color="model_family",
                    title="Macro-F1 on the next month",
                    x_title="evaluation month",
                    sort="x",
                )
            decision_plot = gr.Plot(label="Training decisions (train or keep) per month")
            estimate_note = gr.Markdown()
            estimate_table = gr.Dataframe(
                label="Estimated before labels vs realised (newest month first)",
                interactive=False,
            )
            with gr.Row():
                reliability_plot = gr.Plot(label="Calibration (reliability diagram)")
                slice_table = gr.Dataframe(
                    label="Accuracy per slice of tweets (newest month first)", interactive=False
                )
            drift_note = gr.Markdown()
            drift_plot = gr.Plot(show_label=False)
            drift_table = gr.Dataframe(label="Drift reports", interactive=False)
            promotions = gr.Dataframe(label="Promotion decisions (newest first)", interactive=False)

        prediction_outputs = [label, score, version, trained, latency, last, status]
        predict_fn = _guard(ctx, "predict")(functools.partial(predict_one, ctx))
        # In the browser only (no server round trip): copy the numbers into their text boxes.
        show_numbers = {
            "fn": None,
            "inputs": [score, latency],
            "outputs": [score_shown, latency_shown],
            "js": SHOW_NUMBERS_JS,
            "api_visibility": "private",
        }
        predict_button.click(
            predict_fn, text, prediction_outputs, api_name="predict", concurrency_limit=4
        ).success(**show_numbers)
        text.submit(
            predict_fn, text, prediction_outputs, api_visibility="private", concurrency_limit=4
        ).success(**show_numbers)
        feedback_button.click(
            _guard(ctx, "feedback")(functools.partial(give_feedback, ctx)),
            [last, corrected],
            feedback_result,
            api_name="feedback",
        )
        score_button.click(
            _guard(ctx, "batch")(functools.partial(score_file, ctx)),
            upload,
            [result_file, batch_summary, preview],
            api_name="predict_batch",
            concurrency_limit=1,
        )
        history_outputs = [
            summary,
            accuracy,
            macro_f1,
            decision_plot,
            drift_note,
            drift_plot,
            drift_table,
            promotions,
        ]
        history_fn = functools.partial(read_history, ctx)
        refresh.click(history_fn, None, history_outputs, api_name="history")
        monitoring_outputs = [estimate_note, estimate_table, reliability_plot, slice_table]
        monitoring_fn = functools.partial(read_monitoring, ctx)
        refresh.click(monitoring_fn, None, monitoring_outputs, api_name="monitoring")
        check.click(functools.partial(check_now, ctx), None, status, api_name="check_registry")
        poll_fn = functools.partial(poll_status, ctx)
        blocks.load(poll_fn, None, [status, status_timer], api_visibility="private")
        status_timer.tick(
            poll_fn,
            None,
            [status, status_timer],
            api_visibility="private",
            show_progress="hidden",
        )
        blocks.load(history_fn, None, history_outputs, api_visibility="private")
        blocks.load(monitoring_fn, None, monitoring_outputs, api_visibility="private")
    return blocks
