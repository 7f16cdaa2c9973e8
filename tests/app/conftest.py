"""Fixtures for the app tests: one throwaway registry with real TF-IDF champions per session.

Versions: 1 and 2 are real models trained with different regularisation (so their scores
differ and an answer tells which one gave it); 3 is a broken bundle. Version 1 is champion;
a test that moves the alias puts it back with `champion_restored`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gradio_app  # noqa: F401  (sets the offline defaults before mlflow and gradio load)
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry
from tests.app.champions import (
    Corpus,
    home_settings,
    register_broken,
    register_tfidf,
    set_champion,
    synthetic_corpus,
)


@dataclass
class RegistryHome:
    home: Path
    settings: Settings
    corpus: Corpus
    v1: registry.VersionInfo
    v2: registry.VersionInfo
    broken: registry.VersionInfo


def _fast_tmp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """A RAM-backed folder when there is one: MLflow creates its SQLite schema in dozens of
    fsync'ed commits, about 10 s on a busy disk and well under one on tmpfs."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="sentiment-app-tests-", dir=shm)), True
    return tmp_path_factory.mktemp("app-home"), False


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryHome]:
    home, owned = _fast_tmp(tmp_path_factory)
    try:
        settings = home_settings(home)
        corpus = synthetic_corpus()
        v1 = register_tfidf(settings, corpus, C=1.0)
        v2 = register_tfidf(settings, corpus, C=0.05)
        broken = register_broken(settings)
        set_champion(settings, v1.version)
        yield RegistryHome(home, settings, corpus, v1, v2, broken)
    finally:
        if owned:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def champion_restored(registry_home: RegistryHome) -> Iterator[RegistryHome]:
    """For tests that move the alias: version 1 is champion again afterwards."""
    try:
        yield registry_home
    finally:
        set_champion(registry_home.settings, registry_home.v1.version)
