"""Three synthetic months built end to end through Dagster, against a real instance.

The months are built under the `always` policy, so each one trains as its decision says: its
month run, then retrain_job (the fast families) and the fine-tuned follow-up."""

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import date

import dagster as dg
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.definitions import defs
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.models import families
from sentiment_assets.lib.stats.prior_shift import adjust_posteriors
from sentiment_assets.lib.stats.slices import slice_masks
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.cache_pruning import versions_to_keep
from sentiment_assets.lib.versions.promotion import PromotionRecord, previous_champion
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.ops.build import MonthBuild, build_months
from sentiment_assets.ops.instance import prepare_environment
from tests.conftest import use_home

FAMILIES = families.family_names()

pytestmark = pytest.mark.slow
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def runs_of(built) -> list[dg.ExecuteInProcessResult]:
    """A month's runs (its build, then the trainings its decision started), or one run."""
    return built.runs if isinstance(built, MonthBuild) else [built]


def materializations(built, asset: str) -> list[dict]:
    return [
        {k: v.value for k, v in e.materialization.metadata.items()}
        for run in runs_of(built)
        for e in run.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]


def materialization_metadata(built, asset: str) -> dict:
    """The asset's last materialization among the runs (the follow-up's gate, for
    model_challenger: it chose among every family of the month)."""
    return materializations(built, asset)[-1]


def check_evaluations(built) -> list:
    return [c for run in runs_of(built) for c in run.get_asset_check_evaluations()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, tmp_path_factory.mktemp("home"))
        monkeypatch.setenv("SENTIMENT_RETRAIN_POLICY", "always")
        # About the fixed 800-tweet size the follow-up trained on before the budget.
        monkeypatch.setenv("SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS", "20")
        settings = prepare_environment()
        results = build_months()
        rerun = build_months(["2024-02-01"])[0]
        yield settings, dict(zip(MONTHS, results, strict=True)), rerun


def count(con, sql: str, *params) -> int:
    return con.execute(sql, list(params)).fetchone()[0]


def test_every_default_month_was_built(built):
    _, results, _ = built
    assert list(results) == MONTHS
    for built_month in results.values():
        assert built_month.training.decision == "train"
        assert len(built_month.training.runs) == 2, "the fast families, then the follow-up"
        for result in built_month.runs:
            # A challenger that loses to the champion is a decision: the run stays green.
            assert result.success
        checks = check_evaluations(built_month)
        data_checks = [
            c
            for c in checks
            if c.asset_key.to_user_string() in {"raw_tweets", "stg_tweets", "tweets_clean"}
        ]
        assert len(data_checks) >= 10, "dbt tests and the reject-rate check run as asset checks"
        assert [c.check_name for c in data_checks if not c.passed] == []
        drift_checks = [c for c in checks if c.asset_key.to_user_string() == "drift_report"]
        assert len(drift_checks) == 9


def test_the_drift_month_is_flagged_and_the_others_are_not(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        verdicts = dict(
            con.execute(
                "SELECT month, drifted FROM metrics.drift_reports WHERE statistic = 'combined'"
            ).fetchall()
        )
    # Month 1 has no champion to compare with; 240 tweets a month are below the drift tests'
    # 200-row floor on the scored side, so only what can be judged is asserted.
    assert date(2024, 1, 1) not in verdicts
    assert verdicts.get(date(2024, 2, 1)) in (False, None)


def test_metadata_reads_and_plots(built):
    """sentiment_model: one table of the families plus short float keys (Dagster plots floats
    across partitions); drift_report: a one-line summary and the new keywords as a table."""
    _, results, _ = built
    for key, result in results.items():
        trained = materializations(result, "sentiment_model")
        assert [r.data["family"] for model in trained for r in model["families"].records] == list(
            FAMILIES
        ), "the fast families, then the fine-tuned one"
        model, f1s = trained[0], []
        assert not [k for k in model if "/" in k], "no long per-family keys"
        for record in model["families"].records:
            short = families.family(record.data["family"]).short_name
            assert isinstance(model[f"val_f1_{short}"], float)
            assert model[f"val_f1_{short}"] == record.data["val_macro_f1"]
            assert model[f"version_{short}"] == record.data["version"]
            assert model[f"mlflow_run_{short}"].startswith("http")
            f1s.append(model[f"val_f1_{short}"])
        assert model["best_val_f1"] == max(f1s)
        drift_meta = materialization_metadata(result, "drift_report")
        if "note" in drift_meta:  # no champion yet (the first month), or inside its window
            assert key != MONTHS[0] or drift_meta["note"] == "no champion yet"
            assert drift_meta["summary"] == f"not judged: {drift_meta['note']}"
            continue
        assert re.match(
            r"(drift|no drift|not judged): \d of 6 deciding statistics beyond threshold",
            drift_meta["summary"],
        ), drift_meta["summary"]
        keywords = drift_meta["new_keywords"]
        assert [c.name for c in keywords.schema.columns][:2] == ["keyword", "tweets_current"]


def test_rows_are_conserved_per_month(built):
    settings, results, _ = built
    config = synthetic.config_from_env({"SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "240"})
    with connect(settings.duckdb_path, read_only=True) as con:
        for key, result in results.items():
            month = date.fromisoformat(key)
            meta = materialization_metadata(result, "raw_tweets")
            accepted = count(con, "SELECT count(*) FROM raw.tweets WHERE month = ?", month)
            rejected = count(con, "SELECT count(*) FROM raw.rejected_tweets WHERE month = ?", month)
            generated = len(synthetic.generate_month(config, month))
            assert accepted + rejected == generated == meta["rows_in"]
            assert (meta["rows_accepted"], meta["rows_rejected"]) == (accepted, rejected)
            assert rejected > 0, "the generator's broken rows must be quarantined, not dropped"
            clean = count(con, "SELECT count(*) FROM clean.tweets_clean WHERE month = ?", month)
            distinct_ids = count(
                con, "SELECT count(DISTINCT tweet_id) FROM raw.tweets WHERE month = ?", month
            )
            assert 0.9 * distinct_ids <= clean <= distinct_ids
            embedded = count(
                con, "SELECT count(*) FROM features.tweet_embeddings WHERE month = ?", month
            )
            assert embedded == clean


def test_rerun_replaces_a_month_instead_of_appending(built):
    settings, results, rerun = built
    with connect(settings.duckdb_path, read_only=True) as con:
        for table in (
            "raw.tweets",
            "raw.rejected_tweets",
            "clean.tweets_clean",
            "features.tweet_embeddings",
        ):
            per_month = con.execute(
                f"SELECT month, count(*) FROM {table} GROUP BY month ORDER BY month"
            ).fetchall()
            assert len(per_month) == 3
            assert max(n for _, n in per_month) < 2 * min(n for _, n in per_month), table
        evaluations = count(
            con,
            "SELECT count(*) FROM metrics.model_evaluations "
            "WHERE eval_month = ? AND eval_set = 'next_month'",
            date(2024, 2, 1),
        )
        assert evaluations == 3, "one row per (model, eval month), also after a rerun"
        for table, key in (
            ("metrics.model_evaluations", "eval_set"),
            ("metrics.slice_evaluations", "slice"),
        ):
            duplicated = count(
                con,
                f"SELECT count(*) - count(DISTINCT (model_version, {key})) FROM {table} "
                "WHERE eval_month = ?",
                date(2024, 2, 1),
            )
            assert duplicated == 0, table
    first = materialization_metadata(results["2024-02-01"], "tweet_embeddings")
    again = materialization_metadata(rerun, "tweet_embeddings")
    assert first["encoded"] > 0
    assert again["encoded"] == 0 and again["from_cache"] == first["unique_texts"]
    # The run names what judged its int8 graph: on the generator's data, the synthetic probes.
    int8 = first["encoder"].endswith("|onnx-int8")
    assert "synthetic" in (first["encoder_gate"] if int8 else first["encoder_note"])
    assert (
        materialization_metadata(rerun, "raw_tweets")["rows_in"]
        == (materialization_metadata(results["2024-02-01"], "raw_tweets")["rows_in"])
    )


def test_forward_chained_metrics_are_recorded(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT model_family, trained_through, eval_month, n, accuracy, macro_f1 "
            "FROM metrics.model_evaluations WHERE eval_set = 'next_month' "
            "ORDER BY eval_month, model_family"
        ).fetchall()
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (family, date(2024, m - 1, 1), date(2024, m, 1)) for family in FAMILIES for m in (2, 3)
    }
    for family, _, eval_month, n, accuracy, macro_f1 in rows:
        assert n > 150
        assert 0.0 <= macro_f1 <= 1.0
        if eval_month == date(2024, 2, 1) and family != "finetuned_transformer":
            # Undrifted month: a model trained on one month must beat chance clearly (the
            # fine-tuned transformer's CPU test budget is too small to promise that).
            assert accuracy > 0.6, (family, accuracy)


def test_every_evaluated_version_has_an_estimate_beside_its_realised_score(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        pairs = con.execute(
            "SELECT r.eval_month, r.eval_set, e.n, r.n, e.accuracy, e.accuracy_lower, "
            "e.accuracy_upper, e.macro_f1_lower, e.macro_f1, e.macro_f1_upper, r.accuracy "
            "FROM metrics.model_evaluations r LEFT JOIN metrics.model_evaluations e "
            "ON e.model_version = r.model_version AND e.eval_month = r.eval_month "
            "AND e.eval_set = 'estimated' WHERE r.eval_set IN ('next_month', 'champion')"
        ).fetchall()
        estimates = count(
            con, "SELECT count(*) FROM metrics.model_evaluations WHERE eval_set = 'estimated'"
        )
    assert len(pairs) == estimates >= 2 * len(FAMILIES)
    for month, _, n_all, n_labelled, acc, acc_low, acc_high, f1_low, f1, f1_high, real in pairs:
        assert n_all is not None, f"{month}: a realised row without its estimate"
        # The estimate reads every tweet of the month, labelled or not.
        assert n_all >= n_labelled
        assert acc_low < acc < acc_high and f1_low < f1 < f1_high
        assert 0.5 <= acc <= 1.0 and 0.0 <= real <= 1.0


def test_every_version_is_calibrated_on_its_holdout(built):
    """The temperature travels on the bundle's card; ECE and the reliability diagram are in
    MLflow and in metrics.training_runs, which the app reads from the snapshot."""
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT calibration_method, temperature, ece_before, ece_after, reliability, "
            "mlflow_run_id FROM metrics.training_runs"
        ).fetchall()
    assert rows
    client = MlflowClient(settings.mlflow_tracking_uri)
    for method, temperature, before, after, reliability, run_id in rows:
        assert method == "temperature" and temperature > 0
        assert 0.0 <= after <= 1.0 and 0.0 <= before <= 1.0
        assert {"before", "after"} == set(json.loads(reliability))
        run = client.get_run(run_id)
        assert run.data.metrics["ece_after"] == pytest.approx(after)
        artifacts = [a.path for a in client.list_artifacts(run_id, "calibration")]
        assert artifacts == ["calibration/reliability.png"]
    champion = registry.champion(client)
    card = json.loads(
        (
            registry.cached_bundle_path(settings.registry_cache_dir, champion.version) / "card.json"
        ).read_text()
    )
    assert card["calibration"]["method"] == "temperature"
    published = pd.read_parquet(settings.published_dir / "history" / "training_runs.parquet")
    assert published["reliability"].notna().all()


def test_slices_count_each_labelled_tweet_once_per_matching_slice(built):
    settings, results, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        for key in MONTHS[1:]:
            month = date.fromisoformat(key)
            texts = [
                t
                for (t,) in con.execute(
                    "SELECT text FROM clean.tweets_clean WHERE month = ? AND label IS NOT NULL",
                    [month],
                ).fetchall()
            ]
            expected = {k: int(v.sum()) for k, v in slice_masks(texts).items() if v.any()}
            rows = con.execute(
                "SELECT model_version, slice, n FROM metrics.slice_evaluations "
                "WHERE eval_month = ?",
                [month],
            ).fetchall()
            versions = {v for v, _, _ in rows}
            assert len(versions) >= len(FAMILIES)
            for version in versions:
                assert {s: n for v, s, n in rows if v == version} == expected, (key, version)
            # The Dagster metadata shows the same slices, and the WARN check ran.
            meta = materialization_metadata(results[key], "model_evaluation")
            assert {r.data["slice"] for r in meta["slices"].records} == set(expected)
            (check,) = [
                c
                for c in check_evaluations(results[key])
                if c.asset_key.to_user_string() == "model_evaluation"
            ]
            assert check.check_name == "slices_within_margin"
            assert check.severity == dg.AssetCheckSeverity.WARN
        total = count(con, "SELECT count(*) FROM metrics.slice_evaluations")
    published = pd.read_parquet(settings.published_dir / "history" / "slice_evaluations.parquet")
    assert len(published) == total


def test_model_bundles_hold_no_pickles(built):
    settings, _, _ = built
    for root in (settings.registry_cache_dir, settings.mlflow_artifacts_dir):
        files = [p for p in root.rglob("*") if p.is_file()]
        assert any(p.name == "model.skops" for p in files), root
        assert any(p.name == "model.safetensors" for p in files), root
        assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib"}], root


def file_digests(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_each_version_has_one_local_copy_equal_to_the_registry(built, tmp_path):
    """Training moves its bundle into the cache: no second folder, no leftover staging; the
    champion's step prunes the cache to the versions worth keeping."""
    settings, _, _ = built
    assert not (settings.home / "models").exists()
    entries = sorted(p.name for p in settings.registry_cache_dir.iterdir())
    assert not [name for name in entries if name.startswith(".")], entries
    client = MlflowClient(settings.mlflow_tracking_uri)
    versions = registry.all_versions(client)
    cached = {name.removeprefix("v") for name in entries}
    assert cached <= {v.version for v in versions}
    champion = registry.champion(client)
    with connect(settings.duckdb_path, read_only=True) as con:
        previous = previous_champion(con, champion.version)
    keep = versions_to_keep(
        [v.version for v in versions], champion.version, previous, settings.cache_keep_newest
    )
    assert keep <= cached
    kept = [v for v in versions if v.version in cached]
    for info in kept[:: len(FAMILIES) + 1]:  # a spread of families and months
        fetched = registry.download_bundle(info, tmp_path / f"fresh-{info.version}")
        local = registry.cached_bundle_path(settings.registry_cache_dir, info.version)
        assert file_digests(local) == file_digests(fetched), info


def test_every_training_is_an_mlflow_run_and_a_registry_version(built):
    settings, _, _ = built
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    assert experiment.artifact_location.startswith(settings.home.as_uri())
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs if r.info.status != "FINISHED"] == []
    assert "__ephemeral_asset_job__" not in {r.info.run_name for r in runs}
    trainings = [r for r in runs if "family" in r.data.tags]
    # 3 months x 3 families, plus the rerun of February, which trained to the same content
    # and so reused February's versions.
    assert len(trainings) == 4 * len(FAMILIES)
    reused = [r for r in trainings if "reused_version" in r.data.tags]
    assert len(reused) == len(FAMILIES)
    for run in trainings:
        assert {"val_accuracy", "val_macro_f1", "train_seconds", "inference_ms_per_tweet"} <= set(
            run.data.metrics
        )
        assert run.data.tags["partition_key"] and run.data.tags["dagster_run_id"]
    january = [r for r in trainings if r.data.tags["trained_through"] == "2024-01-01"]
    assert all("next_month_accuracy" in r.data.metrics for r in january)
    versions = registry.all_versions(client)
    assert len(versions) == len(trainings) - len(reused)
    assert {v.family for v in versions} == set(FAMILIES)
    assert registry.champion(client) is not None


def test_retraining_on_the_same_data_reproduces_the_metrics(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        pairs = con.execute(
            "SELECT model_family, count(*), count(DISTINCT round(val_accuracy, 12)), "
            "count(DISTINCT round(val_macro_f1, 12)) FROM metrics.training_runs "
            "WHERE trained_through = DATE '2024-02-01' GROUP BY model_family"
        ).fetchall()
    assert len(pairs) == len(FAMILIES)
    for family, trainings, accuracies, f1s in pairs:
        assert (trainings, accuracies, f1s) == (2, 1, 1), family


def test_a_rerun_on_unchanged_data_registers_nothing_and_promotes_nothing(built):
    """Content-addressed versions: the rerun of February trains the same bundles, so it
    reuses February's versions and its gate has nothing new to promote."""
    _, results, rerun = built

    def versions(month) -> set[str]:
        return {
            value
            for metadata in materializations(month, "sentiment_model")
            for key, value in metadata.items()
            if key.startswith("version_")
        }

    assert versions(rerun) == versions(results["2024-02-01"]) != set()
    decisions = [c["decision"] for c in materializations(rerun, "model_champion")]
    assert decisions and "promoted" not in decisions


def test_each_month_recorded_a_promotion_decision(built):
    settings, _, _ = built
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT trained_through, decision, model_version, champion_version "
            "FROM metrics.promotions ORDER BY created_at"
        ).fetchall()
    # 3 months and the rerun of February, each gated twice: the fast families, the follow-up.
    assert len(rows) == 8
    assert rows[0][1] == "promoted" and rows[0][3] is None, "the first model becomes champion"
    assert {r[1] for r in rows} <= {"promoted", "rejected", "kept"}
    last_promoted = [r for r in rows if r[1] == "promoted"][-1]
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert registry.champion(client).version == last_promoted[2]
    published = json.loads((settings.published_dir / "champion.json").read_text())
    assert published["version"] == last_promoted[2]


def test_every_promotion_row_is_the_challengers_decision_record(built):
    """The challenger writes its decision once; the champion step (or, on a rejection, the
    challenger itself) records exactly that."""
    settings, results, rerun = built
    fields = [f.name for f in dataclasses.fields(PromotionRecord) if f.name != "dagster_run_id"]
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            f"SELECT {', '.join(fields)} FROM metrics.promotions ORDER BY created_at"
        ).fetchall()
    written = [
        PromotionRecord.from_json(challenger["decision_record"])
        for month in [*results.values(), rerun]
        for challenger in materializations(month, "model_challenger")
    ]
    assert rows == [dataclasses.astuple(record)[: len(fields)] for record in written]


def test_a_rejected_challenger_is_a_decision_not_a_failure(built):
    """Force the worst family as challenger with no margin: the gate warns, the run is green,
    the alias stays and model_champion says why."""
    settings, _, _ = built
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, settings.home)
        client = MlflowClient(settings.mlflow_tracking_uri)
        before = registry.champion(client)
        with connect(settings.duckdb_path, read_only=True) as con:
            worst = con.execute(
                "SELECT model_family FROM metrics.training_runs "
                "WHERE trained_through = DATE '2024-03-01' ORDER BY val_macro_f1 LIMIT 1"
            ).fetchone()[0]
        definitions = defs()
        result = dg.materialize(
            list(definitions.assets),
            selection=[dg.AssetKey("model_challenger"), dg.AssetKey("model_champion")],
            partition_key="2024-03-01",
            resources=definitions.resources,
            instance=dg.DagsterInstance.get(),
            run_config={"ops": {"model_challenger": {"config": {"family": worst, "margin": 0.0}}}},
            raise_on_error=False,
        )
        (check,) = result.get_asset_check_evaluations()
        after = registry.champion(client)
    if before.family == worst or check.passed:
        pytest.skip("the worst-on-validation family is also the champion: nothing to reject")
    assert result.success
    assert check.severity == dg.AssetCheckSeverity.WARN
    champion = materialization_metadata(result, "model_champion")
    assert champion["decision"] == "rejected" and champion["reason"]
    assert champion["champion_version"] == before.version == after.version
    with connect(settings.duckdb_path, read_only=True) as con:
        decision = con.execute(
            "SELECT decision FROM metrics.promotions ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]
    assert decision == "rejected"


def clears_floor(score: str, rate: float) -> bool:
    """`score` as the metadata writes it ("17/20" or "17/20 right ..."), by SuiteResult's rule."""
    correct, total = (int(n) for n in score.split(" ")[0].split("/"))
    return correct / total >= rate


def passing_versions(meta: dict) -> set[str]:
    rate = meta["min_behaviour_pass_rate"]
    scores = meta["minimum_functionality_by_version"]
    return {version for version, score in scores.items() if clears_floor(score, rate)}


def test_the_challenger_is_chosen_among_models_that_read_plain_tweets(built):
    _, results, _ = built
    for month, result in results.items():
        meta = materialization_metadata(result, "model_challenger")
        assert len(meta["minimum_functionality_by_version"]) == len(FAMILIES), month
        validation = meta["validation_macro_f1_by_version"]
        eligible = passing_versions(meta) or set(validation)  # none clears it: all compete
        best = max(eligible, key=lambda v: (validation[v], -int(v)))
        assert meta["challenger_version"] == best, (month, meta)
        assert (
            meta["challenger_minimum_functionality"].split(" ")[0]
            == (meta["minimum_functionality_by_version"][meta["challenger_version"]])
        )


def test_the_floor_vetoes_a_challenger_that_misreads_plain_tweets(built):
    """A better holdout score cannot carry a model below the floor past a champion above it."""
    settings, _, _ = built
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, settings.home)
        client = MlflowClient(settings.mlflow_tracking_uri)
        before = registry.champion(client)
        definitions = defs()
        run_config = {
            "ops": {
                # Every family in turn, with a margin no score gap can exceed: only the
                # floor can reject.
                "model_challenger": {"config": {"family": None, "margin": 1.0}}
            }
        }
        outcomes = {}
        for family in FAMILIES:
            run_config["ops"]["model_challenger"]["config"]["family"] = family
            result = dg.materialize(
                list(definitions.assets),
                selection=[dg.AssetKey("model_challenger")],
                partition_key="2024-03-01",
                resources=definitions.resources,
                instance=dg.DagsterInstance.get(),
                run_config=run_config,
                raise_on_error=False,
            )
            meta = materialization_metadata(result, "model_challenger")
            (check,) = result.get_asset_check_evaluations()
            outcomes[family] = (meta, check)
        after = registry.champion(client)
    assert after.version == before.version  # model_champion was not selected
    first = outcomes[FAMILIES[0]][0]
    champion_passes = clears_floor(
        first["champion_minimum_functionality"], first["min_behaviour_pass_rate"]
    )
    vetoed = [
        f
        for f, (meta, _) in outcomes.items()
        if meta["challenger_version"] not in passing_versions(meta)
        and meta["challenger_version"] != before.version
    ]
    if not champion_passes or not vetoed:
        pytest.skip("no family fell below the floor against a champion above it this run")
    for family in vetoed:
        meta, check = outcomes[family]
        assert meta["decision"] == "rejected", (family, meta["reason"])
        assert "misreads plain tweets" in meta["reason"]
        assert not check.passed


def run_cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.environment()}
    return subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_scores_a_file_with_the_champion(built, tmp_path):
    settings, _, _ = built
    champion = registry.champion(MlflowClient(settings.mlflow_tracking_uri))
    texts = ["I love this so much", "I hate this, worst day ever", "meh @someone http://x.co"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "out.csv"
    done = run_cli(settings, "predict", str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out, dtype={"model_version": str})
    assert list(scored.columns) == ["text", "id", "label", "score", "model_version"]
    assert scored["id"].tolist() == [0, 1, 2]
    assert scored["text"].tolist() == texts
    assert set(scored["label"]) <= {"positive", "negative"}
    assert scored["score"].between(0, 1).all()
    assert set(scored["model_version"]) == {champion.version}

    (tmp_path / "nocol.csv").write_text("tweet\nhello\n")
    missing = run_cli(settings, "predict", str(tmp_path / "nocol.csv"))
    assert missing.returncode == 2 and "no 'text' column" in missing.stderr
    (tmp_path / "empty.csv").write_text("")
    empty = run_cli(settings, "predict", str(tmp_path / "empty.csv"))
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_rollback_moves_the_alias_back_in_one_command(built):
    settings, _, _ = built
    client = MlflowClient(settings.mlflow_tracking_uri)
    before = registry.champion(client)
    older = next(v for v in registry.all_versions(client) if v.version != before.version)
    done = run_cli(settings, "rollback", "--to", older.version)
    assert done.returncode == 0, done.stderr
    assert registry.champion(client).version == older.version
    with connect(settings.duckdb_path, read_only=True) as con:
        decision, version = con.execute(
            "SELECT decision, model_version FROM metrics.promotions "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    assert (decision, version) == ("rollback", older.version)
    back = run_cli(settings, "rollback", "--to", before.version)
    assert back.returncode == 0 and registry.champion(client).version == before.version


def recalibrate(month: str, **config) -> dg.ExecuteInProcessResult:
    definitions = defs()
    return dg.materialize(
        list(definitions.assets),
        selection=[dg.AssetKey("prior_adjusted_model")],
        partition_key=month,
        resources=definitions.resources,
        instance=dg.DagsterInstance.get(),
        run_config={"ops": {"prior_adjusted_model": {"config": config}}},
    )


def test_a_prior_adjusted_child_waits_for_labels_then_meets_the_gate(built):
    settings, _, _ = built
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = registry.champion(client)
    with connect(settings.duckdb_path, read_only=True) as con:
        decisions_before = count(con, "SELECT count(*) FROM metrics.promotions")

    # min_prior_change 0 registers a child even for the small shift of a quiet month.
    waiting = materialization_metadata(
        recalibrate("2024-03-01", min_prior_change=0.0, min_labelled_rows=10**9),
        "prior_adjusted_model",
    )
    assert waiting["decision"] == "awaiting labels"
    assert registry.champion(client).version == champion.version
    child = registry.version_info(client, waiting["version"])
    assert (child.kind, child.parent_version) == (registry.PRIOR_ADJUSTED, champion.version)
    fresh = registry.latest_versions_trained_through(client, child.trained_through)
    assert child.version not in {v.version for v in fresh}, "a child is never a month's challenger"

    parent = load_version(champion, settings.registry_cache_dir)
    adjusted = load_version(child, settings.registry_cache_dir)
    adjustment = adjusted.card.prior_adjustment
    assert adjustment["prior"] == pytest.approx(waiting["estimated_prior"], abs=1e-4)
    texts = ["i love this so much", "worst day ever, everything broke", "meh it is ok i guess"]
    expected = adjust_posteriors(
        parent.calibration.apply(parent.predict_proba(texts)),
        adjustment["training_prior"],
        adjustment["prior"],
    )
    assert adjusted.predict_proba(texts) == pytest.approx(expected)
    assert adjusted.version != parent.version

    judged = materialization_metadata(
        recalibrate("2024-03-01", min_prior_change=0.0, min_labelled_rows=20),
        "prior_adjusted_model",
    )
    with connect(settings.duckdb_path, read_only=True) as con:
        assert count(con, "SELECT count(*) FROM metrics.promotions") == decisions_before + 1
        decision, eval_month = con.execute(
            "SELECT decision, eval_month FROM metrics.promotions WHERE model_version = ?",
            [judged["version"]],
        ).fetchone()
    assert (decision, eval_month) == (judged["decision"], date(2024, 3, 1))
    moved = registry.champion(client).version == judged["version"]
    assert moved == (decision == "promoted")
    registry.set_champion(client, champion.version)
