"""The Gradio app that serves the registry's champion (`python -m gradio_app`).

Modules: `model_holder` (the hot-reloaded champion, no gradio), `ui` (the Blocks),
`server` (FastAPI + /metrics + /healthz + uvicorn), `history` (the published snapshot),
`feedback` (predictions and corrections as JSONL), `telemetry`, `config`.
"""
