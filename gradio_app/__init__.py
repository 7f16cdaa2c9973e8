"""The Gradio app that serves the champion (placeholder: see the README)."""
