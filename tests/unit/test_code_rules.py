"""Rules of the code that neither ruff nor import-linter can state, checked on the source."""

import ast
from pathlib import Path

from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [*sorted((ROOT / "sentiment_assets").rglob("*.py")), *(ROOT / "gradio_app").rglob("*.py")]


def calls_to(source: str, names: set[str]) -> list[ast.Call]:
    """The calls in `source` of a function or method named in `names`."""
    return [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) in names
    ]


def offending_lines(rule) -> dict[str, list[int]]:
    """The product files where `rule` (source -> offending line numbers) finds any."""
    return {
        str(path.relative_to(ROOT)): lines for path in PRODUCT if (lines := rule(path.read_text()))
    }


def bare_mlflow_clients(source: str) -> list[int]:
    """Lines that build an MlflowClient without naming its tracking store."""
    return [
        call.lineno
        for call in calls_to(source, {"MlflowClient"})
        if not call.args and not call.keywords
    ]


def test_the_rule_sees_a_bare_client() -> None:
    assert bare_mlflow_clients("from mlflow import MlflowClient\nc = MlflowClient()\n") == [2]
    assert bare_mlflow_clients("c = MlflowClient('sqlite:///x.db')\n") == []


def test_every_mlflow_client_names_its_store() -> None:
    # MlflowClient() falls back to the process's global URI: whichever store was set last.
    assert offending_lines(bare_mlflow_clients) == {}, (
        "pass the tracking URI (PlatformResource.mlflow_client())"
    )


def test_the_platform_resource_parses_its_settings_once(tmp_path: Path) -> None:
    resource = PlatformResource.of(load_settings({"SENTIMENT_HOME": str(tmp_path)}))
    assert resource.settings is resource.settings
    assert resource.settings.home == tmp_path
    assert resource.mlflow_client().tracking_uri == resource.settings.mlflow_tracking_uri


def test_test_files_have_unique_names() -> None:
    # Test folders without __init__.py import their modules by basename: a second file of
    # the same name stops pytest's collection of the whole suite.
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def metric_writes(source: str) -> list[int]:
    """Lines that write a `metrics.` table through replace_rows/append_rows directly."""
    return [
        call.lineno
        for call in calls_to(source, {"replace_rows", "append_rows"})
        if any(
            isinstance(arg, ast.Constant) and str(arg.value).startswith("metrics.")
            for arg in call.args
        )
    ]


def test_the_rule_sees_a_metric_write() -> None:
    assert metric_writes("append_rows(con, 'metrics.promotions', frame)\n") == [1]
    assert metric_writes("replace_rows(con, 'raw.tweets', frame, 'true', [])\n") == []


def test_the_metric_history_grows_only_through_record_history() -> None:
    # A write that skips the publish leaves the app and `sentiment sql` behind the warehouse.
    assert offending_lines(metric_writes) == {}, (
        "write metrics.* rows with lib.versions.publish.record_history"
    )
