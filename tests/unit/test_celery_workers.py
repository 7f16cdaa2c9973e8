"""The prod profile's Celery wiring: the executor, the workers' config file and command agree
on one broker, and dagster-celery itself accepts them (its own parser and config schema)."""

import stat
from pathlib import Path

import dagster as dg
import pytest
from dagster_celery.cli import get_validated_config, worker_start_command

from sentiment_assets.defs.platform.executor import executor
from sentiment_assets.lib.hosting.celery_workers import (
    DEFAULT_BROKER,
    celery_worker_command,
    celery_worker_environment,
    executor_config,
)
from sentiment_assets.lib.settings import load_settings

BROKER = "redis://:secret@127.0.0.1:16379/0"


def prod_settings(home):
    return load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "SENTIMENT_PROFILE": "prod",
            "SENTIMENT_CELERY_BROKER": BROKER,
        }
    )


def test_the_worker_command_is_one_dagster_celery_accepts(tmp_path):
    settings = prod_settings(tmp_path)
    argv = celery_worker_command(settings, "worker-1")
    assert argv[0].endswith("/dagster-celery") and argv[1:3] == ["worker", "start"]
    # Parsed by dagster-celery's own command line, as `dagster-celery worker start` would.
    context = worker_start_command.make_context("start", argv[3:])
    assert context.params["name"] == "worker-1"
    assert context.params["app"] == "dagster_celery.app"
    assert "--concurrency=1" in context.params["additional_args"]
    # The config file it names is valid executor config, with the settings' broker.
    config = get_validated_config(context.params["config_yaml"])
    assert config["broker"] == BROKER
    assert config["backend"] == BROKER


def test_the_worker_config_is_private_because_it_holds_the_broker_password(tmp_path):
    argv = celery_worker_command(prod_settings(tmp_path), "worker-1")
    path = argv[argv.index("--config-yaml") + 1]
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_without_a_broker_variable_the_local_redis_is_assumed(tmp_path):
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_PROFILE": "prod"})
    assert executor_config(settings)["broker"] == DEFAULT_BROKER


def test_workers_find_celery_and_the_settings_in_their_environment(tmp_path):
    settings = prod_settings(tmp_path)
    env = celery_worker_environment({"PATH": "/usr/bin", "LANG": "C.UTF-8"}, settings)
    first, rest = env["PATH"].split(":", 1)
    # dagster-celery starts `celery` by name: this interpreter's one comes first.
    assert (Path(first) / "celery").exists()
    assert rest == "/usr/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["SENTIMENT_CELERY_BROKER"] == BROKER
    assert env["DAGSTER_HOME"] == str(settings.dagster_home)


@pytest.mark.parametrize("profile", ["embedded", "prod"])
def test_steps_run_on_celery_in_prod_and_in_the_runs_process_otherwise(profile, monkeypatch):
    monkeypatch.setenv("SENTIMENT_PROFILE", profile)
    monkeypatch.setenv("SENTIMENT_CELERY_BROKER", BROKER)
    definitions = executor()
    if profile == "embedded":
        assert definitions.executor == dg.in_process_executor
        return
    assert isinstance(definitions.executor, dg.ExecutorDefinition)
    assert definitions.executor.name == "celery"
