"""The Gradio app that serves the registry's champion (`python -m gradio_app`).

Modules: `model_holder` (the hot-reloaded champion, no gradio), `ui` (the Blocks),
`server` (FastAPI + /metrics + /healthz + uvicorn), `history` (the published snapshot),
`feedback` (predictions and corrections as JSONL), `telemetry`, `config`.
"""

import os

# Read once by gradio, huggingface_hub and mlflow at import, so set before any submodule
# imports them. The app runs offline, phones nowhere, and logs no progress bars.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
