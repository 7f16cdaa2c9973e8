"""Pure Python rooms, layered bottom-up: core, store, stats, data, encoding, models, settings, versions, runtime (contracts in pyproject.toml)."""
