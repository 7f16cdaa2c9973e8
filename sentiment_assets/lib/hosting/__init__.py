"""Local service processes (serve, the prod profile): start, record, probe, stop; PostgreSQL, Redis, MLflow, Celery."""
