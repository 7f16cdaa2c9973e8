"""Registered versions: the MLflow registry, loading, evaluation rows, promotion, publishing, the retrain policy, cache pruning."""
