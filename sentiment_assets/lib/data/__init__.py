"""Tweets in: sources and their formats, the synthetic generator, text cleaning, landing files, sampling and the holdout, batch files."""
