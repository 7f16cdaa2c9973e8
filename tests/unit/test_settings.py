"""Every process derives the same folders from the same SENTIMENT_HOME."""

from __future__ import annotations

from pathlib import Path

from sentiment_assets.lib.settings import HomeLayout, load_settings
from sentiment_assets.resources import PlatformResource

FOLDERS = [name for name, value in vars(HomeLayout).items() if isinstance(value, property)]


def test_settings_and_the_dagster_resource_agree_on_every_folder(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    resource = PlatformResource(home=str(settings.home), source=settings.source)
    assert len(FOLDERS) >= 7
    for name in FOLDERS:
        folder = getattr(settings, name)
        assert folder == getattr(resource, name), name
        assert folder.parent == tmp_path.resolve(), name
    assert len({getattr(settings, name) for name in FOLDERS}) == len(FOLDERS)  # no two share
