"""The README and the documentation site name only things that exist.

Every repository path they name, every `make TARGET`, every `sentiment SUBCOMMAND`, and the
code layout tree of the architecture page are checked against the repository itself, so the
docs cannot drift from the code unnoticed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from sentiment_assets import cli

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ARCHITECTURE = REPO / "docs" / "architecture.md"
README_MAX_LINES = 300

# Paths under SENTIMENT_HOME (and other folders a run or a build creates) that the docs
# describe but git does not track: a name whose first component is here is not looked up.
RUNTIME_PATHS = {
    ".sentiment",
    ".sentiment-drift-demo",
    ".venv",
    "site",
    "warehouse.duckdb",
    "mlflow.db",
    "mlartifacts",
    "dagster_home",
    "registry_cache",
    "onnx_cache",
    "published",
    "champion.json",
    "landing",
    "feedback",
    "source_months.json",
    "lake",
    "prod",
    "dbt",
    "serve",
    "backups",
    ".reason.txt",
}
# Build outputs inside the repository that git ignores.
BUILD_PATHS = {"dbt_project/target/"}
# Slash-separated names that are not paths: Dagster run tags.
NOT_PATHS = {"sentiment/job", "dagster/backfill"}
FILE_SUFFIXES = {
    ".py", ".md", ".yml", ".yaml", ".json", ".sql", ".toml", ".txt", ".png", ".cfg", ".sh",
}  # fmt: skip

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCED_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
MAKE_CALL = re.compile(r"\bmake ([a-z][\w-]*)")
SENTIMENT_CALL = re.compile(r"(?<![\w-])sentiment ([a-z][\w-]*)(?: ([a-z][\w-]*))?")
CHOICES = re.compile(r"\{([\w,-]+)\}")


def documents() -> list[Path]:
    return [README, *sorted((REPO / "docs").rglob("*.md"))]


def document_ids() -> list[str]:
    return [str(path.relative_to(REPO)) for path in documents()]


@cache
def tracked_files() -> frozenset[str]:
    listing = subprocess.run(
        ["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    return frozenset(listing.splitlines())


@cache
def tracked_folders() -> frozenset[str]:
    return frozenset(str(parent) for name in tracked_files() for parent in Path(name).parents)


def is_tracked(path: str) -> bool:
    path = path.rstrip("/")
    return path in tracked_files() or path in tracked_folders()


def code_text(markdown: str) -> list[str]:
    """The inline code spans and fenced blocks of a page: where commands are written."""
    blocks = FENCED_BLOCK.findall(markdown)
    return CODE_SPAN.findall(FENCED_BLOCK.sub("", markdown)) + blocks


def named_paths(markdown: str) -> list[str]:
    """Repository paths named in inline code: anything with a slash or a file suffix,
    cut at the first placeholder (`<N>`, `*`), never URLs or absolute paths."""
    found = []
    for span in CODE_SPAN.findall(FENCED_BLOCK.sub("", markdown)):
        if " " in span or "://" in span or span.startswith(("/", "$", "-")) or span in NOT_PATHS:
            continue
        if "/" not in span and Path(span).suffix not in FILE_SUFFIXES:
            continue
        stem = re.split(r"[<*{]", span, maxsplit=1)[0]
        if stem:
            found.append(stem)
    return found


def unknown_path(path: str) -> bool:
    if path in BUILD_PATHS:
        return False
    first = path.removeprefix("./").split("/", 1)[0]
    return first not in RUNTIME_PATHS and not is_tracked(path.removeprefix("./"))


def linked_paths(document: Path) -> list[str]:
    """Relative link and image targets, as repository paths."""
    found = []
    for target in LINK_TARGET.findall(document.read_text()):
        target = target.split("#", 1)[0]
        if not target or re.match(r"[a-z]+:", target):
            continue
        # relpath, not relative_to: a link out of the repository comes back as "../x",
        # which git does not track, so the test names it instead of raising.
        found.append(os.path.relpath((document.parent / target).resolve(), REPO))
    return found


@cache
def make_targets() -> frozenset[str]:
    makefile = (REPO / "Makefile").read_text()
    return frozenset(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", makefile, re.MULTILINE))


@cache
def subcommands(*words: str) -> frozenset[str]:
    """The choices that `sentiment WORDS... --help` lists under "positional arguments":
    what the real argparse parser accepts there (empty where it takes free text)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
        cli.main([*words, "--help"])
    positional = output.getvalue().partition("positional arguments:")[2].split("\n\n", 1)[0]
    choices = CHOICES.search(positional)
    return frozenset(choices.group(1).split(",")) if choices else frozenset()


def unknown_sentiment_calls(markdown: str) -> set[str]:
    wrong = set()
    for text in code_text(markdown):
        for command, argument in SENTIMENT_CALL.findall(text):
            if command not in subcommands():
                wrong.add(command)
            elif argument and subcommands(command) and argument not in subcommands(command):
                wrong.add(f"{command} {argument}")
    return wrong


def test_the_readme_stays_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move depth into docs/"


@pytest.mark.parametrize("document", documents(), ids=document_ids())
def test_every_named_path_exists(document: Path) -> None:
    markdown = document.read_text()
    missing = [path for path in named_paths(markdown) if unknown_path(path)]
    missing += [path for path in linked_paths(document) if not is_tracked(path)]
    assert not missing, f"{document.name} names paths that git does not track: {missing}"


@pytest.mark.parametrize("document", documents(), ids=document_ids())
def test_every_make_target_exists(document: Path) -> None:
    named = {
        target for text in code_text(document.read_text()) for target in MAKE_CALL.findall(text)
    }
    assert named <= make_targets(), f"not Makefile targets: {sorted(named - make_targets())}"


@pytest.mark.parametrize("document", documents(), ids=document_ids())
def test_every_sentiment_command_exists(document: Path) -> None:
    wrong = unknown_sentiment_calls(document.read_text())
    assert not wrong, f"{document.name} names unknown `sentiment` commands: {sorted(wrong)}"


def layout_tree() -> list[tuple[str, ...]]:
    """The architecture page's layout block as paths: one entry per line, the names before
    a gap of two spaces, two spaces of indentation per level, folders ending in '/'."""
    block = next(
        b
        for b in FENCED_BLOCK.findall(ARCHITECTURE.read_text())
        if b.startswith("sentiment_assets/")
    )
    parents: list[str] = []
    entries = []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0].split()
        assert indent % 2 == 0 and indent // 2 <= len(parents), f"bad indentation: {line!r}"
        del parents[indent // 2 :]
        for name in names:
            assert name.endswith("/") or "." in name, f"not a file or folder name: {name!r}"
            entries.append((*parents, name.rstrip("/")))
        if names[-1].endswith("/"):
            parents.append(names[-1].rstrip("/"))
    return entries


def test_the_layout_tree_names_only_what_exists() -> None:
    missing = ["/".join(entry) for entry in layout_tree() if not is_tracked("/".join(entry))]
    assert not missing, f"docs/architecture.md's layout names what git does not track: {missing}"


def test_the_layout_tree_lists_every_package() -> None:
    listed = {"/".join(entry) for entry in layout_tree()}
    packages = {
        str(Path(name).parent) for name in tracked_files()
        if name.startswith("sentiment_assets/") and name.endswith(".py")
    }  # fmt: skip
    assert not packages - listed, (
        f"docs/architecture.md's layout leaves out packages: {sorted(packages - listed)}"
    )
