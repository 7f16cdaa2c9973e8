-- Run once by the postgres:15 image on an empty volume (docker-compose.yml): POSTGRES_DB
-- creates Dagster's database, this one MLflow's backend store.
CREATE DATABASE mlflow;
