"""Local service processes of the prod profile: supervised PostgreSQL, Redis, MLflow, Celery workers."""
