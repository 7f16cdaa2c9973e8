from pathlib import Path

import pytest

from sentiment_assets.lib.registry import (
    VersionInfo,
    adopt_bundle,
    cached_bundle_path,
    download_bundle,
    staging_dir,
)

INFO = VersionInfo("7", "tfidf_logreg", "2024-01-01", None, "unused")


def bundle_in(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(marker)
    return folder


def test_adopting_moves_the_bundle_in_as_the_version_and_the_cache_serves_it(tmp_path):
    cache = tmp_path / "cache"
    with staging_dir(cache, "tfidf_logreg") as staging:
        assert staging.parent == cache and staging.name.startswith(".tfidf_logreg-")
        adopted = adopt_bundle(bundle_in(staging / "bundle", "trained"), INFO, cache)
    assert adopted == cached_bundle_path(cache, "7") == cache / "v7"
    assert (adopted / "card.json").read_text() == "trained"
    assert sorted(p.name for p in cache.iterdir()) == ["v7"]  # staging gone
    # Found locally: the (unreachable) source is never asked for.
    assert download_bundle(INFO, cache) == adopted


def test_a_copy_fetched_first_wins_and_the_staged_one_is_dropped(tmp_path):
    cache = tmp_path / "cache"
    bundle_in(cache / "v7", "fetched")
    with staging_dir(cache, "tfidf_logreg") as staging:
        adopted = adopt_bundle(bundle_in(staging / "bundle", "trained"), INFO, cache)
        assert not (staging / "bundle").exists()
    assert (adopted / "card.json").read_text() == "fetched"
    assert sorted(p.name for p in cache.iterdir()) == ["v7"]


def test_staging_is_removed_when_the_step_fails(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError), staging_dir(cache, "finetuned_transformer") as staging:
        bundle_in(staging / "bundle", "half written")
        raise RuntimeError("training failed")
    assert list(cache.iterdir()) == []
