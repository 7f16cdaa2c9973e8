"""Settings for an MLflow tracking server over HTTP versus the home's own SQLite store."""

from pathlib import Path

from sentiment_assets.commands.serve import serves_mlflow
from sentiment_assets.lib.settings import (
    DEFAULT_MLFLOW_UI_URL,
    is_tracking_server,
    load_settings,
    server_cache_name,
)


def test_the_embedded_store_keeps_its_cache_and_ui(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert settings.registry_cache_dir == tmp_path.resolve() / "registry_cache"
    assert settings.mlflow_ui_url == DEFAULT_MLFLOW_UI_URL
    assert serves_mlflow(settings)


def test_a_server_gets_its_own_cache_folder_and_is_its_own_ui(tmp_path: Path) -> None:
    settings = load_settings(
        {"SENTIMENT_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://10.1.2.3:5001/"}
    )
    cache = settings.registry_cache_dir
    # Inside the home's cache, but never named like a version folder (v<N>) of it.
    assert cache.parent == tmp_path.resolve() / "registry_cache"
    assert cache.name.startswith("server-10.1.2.3-5001-")
    assert settings.mlflow_ui_url == "http://10.1.2.3:5001"
    assert not serves_mlflow(settings)


def test_an_explicit_ui_url_wins_over_the_server(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(tmp_path),
            "MLFLOW_TRACKING_URI": "https://mlflow.internal",
            "MLFLOW_UI_URL": "https://ui.internal",
        }
    )
    assert settings.mlflow_ui_url == "https://ui.internal"


def test_server_cache_names_tell_servers_apart_and_hide_credentials() -> None:
    one = server_cache_name("http://alice:s3cret@mlflow.internal:5000")
    assert "s3cret" not in one and "alice" not in one
    assert one != server_cache_name("http://bob:other@mlflow.internal:5000")
    assert server_cache_name("http://127.0.0.1:5000") == server_cache_name("http://127.0.0.1:5000/")
    assert server_cache_name("databricks").startswith("server-databricks-")


def test_only_servers_count_as_tracking_servers(tmp_path: Path) -> None:
    assert is_tracking_server("http://127.0.0.1:5000")
    assert is_tracking_server("HTTPS://mlflow.internal")
    assert is_tracking_server("databricks")
    assert not is_tracking_server(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not is_tracking_server("postgresql+psycopg2://u:p@127.0.0.1:5432/mlflow")
    assert not is_tracking_server(tmp_path.as_uri())
