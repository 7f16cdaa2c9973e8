import sys

sys.exit(
    "The Gradio app is not built yet (its issue is open). Meanwhile, score files with "
    "`sentiment predict FILE` against the registry's champion."
)
