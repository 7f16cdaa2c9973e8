"""Basics every room may use: atomic file writes, calendar months, process liveness, default ports."""
