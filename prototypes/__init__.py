"""Code that is designed and tested but not yet part of the Dagster code location (which
loads everything under sentiment_assets/defs/): moved there when it is wired in."""
