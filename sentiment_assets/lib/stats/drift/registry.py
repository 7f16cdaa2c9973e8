"""The drift statistics' registry: one ``@statistic`` declaration per statistic.

A declaration says everything the rest of the platform needs: the statistic's name (its row in
``metrics.drift_reports`` and its asset check), its kind, its severity (whether it can trigger a
retrain, see ``combine``), which fields of :class:`DriftSample` it reads and the thresholds it
is tuned by. From the registry come the report (every registered statistic, in declaration
order), :class:`DriftThresholds` (their values, defaults included) and the Dagster
``DriftConfig`` the Launchpad edits. Adding a statistic is one decorated function::

    @statistic("prediction_mean", "prediction", severity="warn", reads=("scores",),
               thresholds={"max_mean_gap": Threshold(0.1, "Largest tolerated mean gap.")})
    def prediction_mean(reference, current, thresholds) -> Measurement:
        ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any, ParamSpec

import numpy as np

KINDS = ("embedding", "prediction", "label", "performance", "vocabulary", "combined")
SEVERITIES = ("warn", "error")
COMBINED = "combined"


@dataclass(frozen=True)
class StatResult:
    """One drift statistic for one (reference, current) pair.

    ``drifted`` is None when the check could not run (too few rows, no labels); the reason is
    in ``detail["reason"]`` and ``value``/``threshold`` are NaN. For a test, ``drifted`` is
    ``p_value <= detail["alpha"]``, which is the same as ``value`` beyond ``threshold``.
    ``detail`` holds only JSON-serialisable values (str, int, float, bool, None, list, dict).
    """

    statistic: str
    value: float
    threshold: float
    drifted: bool | None
    p_value: float | None
    detail: dict
    kind: str
    severity: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON, metadata or a table row)."""
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """What a statistic's function returns; ``@statistic`` adds its name, kind and severity."""

    value: float
    threshold: float
    drifted: bool | None
    p_value: float | None
    detail: dict


def _always_valid(value: Any, values: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Threshold:
    """One tunable value of the drift checks: its default, what it means, what is allowed.

    ``valid(value, values)`` sees every threshold's value, for rules that tie two together;
    ``rule`` completes "<name> ..." in the error when it is False. The default's type (int or
    float) is the type of the field the Launchpad shows.
    """

    default: int | float
    doc: str
    valid: Callable[[Any, Mapping[str, Any]], bool] = _always_valid
    rule: str = ""


# Thresholds every statistic reads (through the shared helpers), declared by no statistic.
COMMON_THRESHOLDS: Mapping[str, Threshold] = MappingProxyType(
    {
        "alpha": Threshold(
            0.01,
            """False-alarm probability of each *error* check. There are five (embedding,
    prediction score distribution, predicted-positive rate, label prior, performance), so a
    month without drift is flagged by the combined verdict with probability <= 5 x 0.01 = 5%
    (Bonferroni; the checks are positively correlated, which makes the real rate lower). The
    embedding check runs two tests (mean distance and MMD) at alpha/2 each so that it counts
    once. The *warn* checks (PSI, vocabulary) also run at alpha but do not enter the combined
    verdict.""",
            lambda alpha, _: 0.0 < alpha < 0.5,
            "must be within (0, 0.5)",
        ),
        "min_samples": Threshold(
            200,
            """Fewest rows per side (with a score, a label, ... as the check needs) for a
    verdict; below it the check reports drifted=None with reason "not enough data". 200 is a
    floor, not a recommendation: power at the default magnitudes needs about 1,000 rows per
    side.""",
            lambda n, _: n >= 2,
            "must be >= 2",
        ),
        "seed": Threshold(
            0, "Seed of every random choice (permutations, subsamples, vocabulary split)."
        ),
    }
)


@dataclass
class DriftSample:
    """One side of a comparison.

    ``embeddings``: (n, d) float32 sentence embeddings of the texts.
    ``scores``: (n,) the champion's P(positive); NaN where no out-of-sample score exists. The
    reference side must not carry scores of rows the champion was trained on (in-sample scores
    are over-confident and their accuracy optimistic, which would look like drift): give NaN
    there and real scores only for held-out rows.
    ``texts``: the n (cleaned) texts.
    ``labels``: (n,) 0/1, or None when the side has no labels; entries other than 0 and 1
    (NaN, -1) mark unlabelled rows.
    """

    embeddings: np.ndarray
    scores: np.ndarray
    texts: list[str]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise ValueError("embeddings must be a 2-D (n, d) array")
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.texts = [str(t) for t in self.texts]
        n = self.embeddings.shape[0]
        if len(self.scores) != n or len(self.texts) != n:
            raise ValueError(
                f"embeddings ({n}), scores ({len(self.scores)}) and texts ({len(self.texts)}) "
                "must have one row per tweet"
            )
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float64).reshape(-1)
            if len(self.labels) != n:
                raise ValueError(f"labels ({len(self.labels)}) must have {n} rows")

    def __len__(self) -> int:
        return self.embeddings.shape[0]


SAMPLE_FIELDS = tuple(f.name for f in fields(DriftSample))


@dataclass(frozen=True)
class Statistic:
    """A registered statistic. ``function`` takes the ``reads`` fields of the reference, then
    the same fields of the current month, then the :class:`DriftThresholds`."""

    name: str
    kind: str
    severity: str
    reads: tuple[str, ...]
    thresholds: Mapping[str, Threshold]
    function: Callable[..., StatResult]

    def compute(
        self, reference: DriftSample, current: DriftSample, thresholds: DriftThresholds
    ) -> StatResult:
        """This statistic for one (reference, current) pair."""
        sides = [getattr(side, name) for side in (reference, current) for name in self.reads]
        return self.function(*sides, thresholds)

    @property
    def description(self) -> str:
        """The first paragraph of the statistic's docstring, on one line (its check's text)."""
        first = (self.function.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(first.split()) or f"the {self.kind} statistic {self.name}"


# Insertion order is the report's order (and the order of the asset checks).
_REGISTRY: dict[str, Statistic] = {}

P = ParamSpec("P")


def statistic(
    name: str,
    kind: str,
    *,
    severity: str,
    reads: tuple[str, ...],
    thresholds: Mapping[str, Threshold] | None = None,
) -> Callable[[Callable[P, Measurement]], Callable[P, StatResult]]:
    """Register the decorated function as the drift statistic ``name``.

    The function measures (returns a :class:`Measurement`); the decorated function returns
    the :class:`StatResult` with this name, kind and severity. ``thresholds`` are the values it
    is tuned by, beyond the common ones (alpha, min_samples, seed); two statistics may share a
    threshold by declaring the same :class:`Threshold` object.
    """
    declared = dict(thresholds or {})
    _check_declaration(name, kind, severity, reads, declared)

    def register(measure: Callable[P, Measurement]) -> Callable[P, StatResult]:
        @functools.wraps(measure)
        def run(*args: P.args, **kwargs: P.kwargs) -> StatResult:
            m = measure(*args, **kwargs)
            return StatResult(
                name, m.value, m.threshold, m.drifted, m.p_value, m.detail, kind, severity
            )

        _REGISTRY[name] = Statistic(
            name, kind, severity, tuple(reads), MappingProxyType(declared), run
        )
        return run

    return register


def _check_declaration(
    name: str, kind: str, severity: str, reads: tuple[str, ...], declared: dict[str, Threshold]
) -> None:
    if name in _REGISTRY or name == COMBINED:
        raise ValueError(f"a drift statistic named {name!r} is already registered")
    if kind not in KINDS or kind == COMBINED:
        raise ValueError(f"statistic {name!r}: kind must be one of {KINDS[:-1]}, got {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"statistic {name!r}: severity must be one of {SEVERITIES}")
    if not reads or not set(reads) <= set(SAMPLE_FIELDS):
        raise ValueError(f"statistic {name!r}: reads must name fields of {SAMPLE_FIELDS}")
    known = threshold_specs()
    for threshold, spec in declared.items():
        if threshold in known and known[threshold] is not spec:
            raise ValueError(
                f"statistic {name!r}: threshold {threshold!r} is already declared otherwise "
                "(share it by declaring the same Threshold object)"
            )


def registered() -> tuple[Statistic, ...]:
    """Every registered statistic, in declaration order."""
    return tuple(_REGISTRY.values())


def statistic_named(name: str) -> Statistic:
    """The registered statistic ``name``; a KeyError names the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no drift statistic {name!r}; registered: {', '.join(_REGISTRY)}") from None


COMBINED_DESCRIPTION = (
    "The month's verdict: drifted when any error-severity statistic is drifted; its value is "
    "how many are (the count the report's summary gives)."
)


def describe(name: str) -> str:
    """What the report row ``name`` measures, for people (a statistic or the verdict)."""
    return COMBINED_DESCRIPTION if name == COMBINED else statistic_named(name).description


def report_names() -> tuple[str, ...]:
    """The statistics a report holds, in its order: every registered one, then the verdict."""
    return (*_REGISTRY, COMBINED)


def unregister(name: str) -> None:
    """Remove a statistic (and the thresholds only it declared), e.g. a test's toy one."""
    statistic_named(name)
    del _REGISTRY[name]


def threshold_specs() -> dict[str, Threshold]:
    """Every threshold: the common ones, then each statistic's in declaration order."""
    specs = dict(COMMON_THRESHOLDS)
    for registered_statistic in _REGISTRY.values():
        specs.update(registered_statistic.thresholds)
    return specs


class DriftThresholds:
    """The values of every registered threshold, read as attributes (``thresholds.alpha``).

    Values not given take the declared defaults, which are what ``bench/drift_power.py``
    measured. Immutable, hashable and compared by value. A name no statistic declared, or a
    value its rule refuses, is a ValueError.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: float) -> None:
        specs = threshold_specs()
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ValueError(
                f"unknown drift threshold {', '.join(unknown)}; known: {', '.join(specs)}"
            )
        resolved = {name: values.get(name, spec.default) for name, spec in specs.items()}
        for name, spec in specs.items():
            if not spec.valid(resolved[name], resolved):
                raise ValueError(f"{name} {spec.rule}, got {resolved[name]!r}")
        object.__setattr__(self, "_values", MappingProxyType(resolved))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a threshold; also stops recursion before __init__ ran
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no drift threshold named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DriftThresholds is immutable: build a new one")

    def as_dict(self) -> dict[str, float]:
        """Every threshold's value by name, in declaration order."""
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DriftThresholds) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return f"DriftThresholds({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"
