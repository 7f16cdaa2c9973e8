"""The Gradio app that serves the registry's champion (`python -m gradio_app`).

Modules: `model_holder` (the hot-reloaded champion, no gradio), `ui` (the Blocks),
`server` (FastAPI + /metrics + /healthz + uvicorn), `history` (the published snapshot),
`feedback` (predictions and corrections as JSONL), `telemetry`, `config`.
"""

import os

import sentiment_assets  # noqa: F401  (keeps transformers offline before anything loads it)

# Read once by gradio and mlflow at import, so set before any submodule imports them. The
# app phones nowhere and logs no progress bars.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
