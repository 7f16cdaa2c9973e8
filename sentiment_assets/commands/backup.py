"""`sentiment backup` and `sentiment restore`: copies of the stores that cannot be rebuilt
from the source (lib/versions/backup.py), and putting one back."""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.damage import StoreBusy
from sentiment_assets.lib.versions.backup import list_backups, make_backup, restore_backup
from sentiment_assets.ops.recovery import ACTIVE, is_dead


def command_backup(args: argparse.Namespace) -> int:
    settings = current_settings()
    if args.list:
        for backup in list_backups(settings):
            print(backup.describe())
        return 0
    backup = make_backup(settings)
    print(f"backed up to {backup.path}: {backup.describe()}")
    return 0


def command_restore(args: argparse.Namespace) -> int:
    """Put a backup (default: the newest) in place of the stores; the current files are
    moved aside, never deleted. Refused while a pipeline or `sentiment serve` holds them."""
    settings = current_settings()
    found = {backup.name: backup for backup in list_backups(settings)}
    if not found:
        print(f"error: no backup under {settings.home / 'backups'}", file=sys.stderr)
        return 2
    name = args.name or list(found)[-1]
    if name not in found:
        print(f"error: no backup {name!r}; there are: {', '.join(found)}", file=sys.stderr)
        return 2
    running = live_runs(settings)
    if running:
        raise StoreBusy(f"runs {running} are in flight: let them finish or stop them first")
    aside = restore_backup(settings, found[name])
    print(f"restored {found[name].describe()}; the files it replaced are in {aside}")
    return 0


def live_runs(settings: Settings) -> list[str]:
    """Runs the home's instance shows in flight whose process lives."""
    if not (settings.dagster_home / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        active = instance.get_runs(filters=dg.RunsFilter(statuses=list(ACTIVE)))
        return [run.run_id for run in active if not is_dead(instance, run)]
