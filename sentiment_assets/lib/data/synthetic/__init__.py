"""Seeded generator of tweet-like texts with Sentiment140-style labels and controllable drift.

The generator is the offline default source: it needs no data files, and every month is a pure
function of (seed, month), so any partition can be re-materialised alone and give the same rows.
Three drift knobs per month make the monitoring and retraining paths demonstrable:

* ``positive_rate``: the label prior (prior / label drift);
* ``topic_shift``: the share of tweets about topics the baseline never mentions, with their own
  sentiment words (covariate / vocabulary drift);
* ``concept_drift``: slang that used to be praise ("sick", "wicked", ...) is now used for
  complaints, so the same words mean the opposite (concept drift: a model trained before the
  drift month confidently predicts the old meaning).

Modules: ``config`` (what to generate), ``vocabulary`` (the words), ``tweets`` (one tweet),
``generation`` (a month of rows, in memory or streamed to a file).
"""

from sentiment_assets.lib.data.synthetic.config import (
    NO_DRIFT,
    STRONG_DRIFT,
    MonthDrift,
    SyntheticConfig,
    config_from_env,
    default_config,
    months,
)
from sentiment_assets.lib.data.synthetic.generation import (
    COLUMNS,
    generate_month,
    labelled_sample,
    write_month,
)
from sentiment_assets.lib.data.synthetic.vocabulary import FLIPPING_SLANG, SHIFTED_VOCABULARY

__all__ = [
    "COLUMNS",
    "FLIPPING_SLANG",
    "NO_DRIFT",
    "SHIFTED_VOCABULARY",
    "STRONG_DRIFT",
    "MonthDrift",
    "SyntheticConfig",
    "config_from_env",
    "default_config",
    "generate_month",
    "labelled_sample",
    "months",
    "write_month",
]
