# One image for the Dagster webserver, the daemon and the app. Build context: the repo.
# Everything is installed at build time, the dbt manifest included; nothing is downloaded at
# run time. State lives on the volume mounted at /data.
FROM python:3.11-slim

# The settings derive every path from SENTIMENT_HOME; DAGSTER_HOME is repeated because
# dagster-webserver and dagster-daemon read it before any of the platform's code runs.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    SENTIMENT_HOME=/data \
    DAGSTER_HOME=/data/dagster_home

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY sentiment_assets ./sentiment_assets
COPY gradio_app ./gradio_app
COPY dbt_project ./dbt_project
COPY dagster.yaml workspace.yaml ./
COPY deploy ./deploy

# CPU torch from the PyTorch CPU index keeps the image small; use a CUDA base image and the
# default index for GPU hosts.
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -c constraints.txt -e . \
 && DUCKDB_PATH=/tmp/parse.duckdb dbt parse --quiet --profiles-dir dbt_project --project-dir dbt_project

VOLUME ["/data"]
EXPOSE 3000 7860
# One image, three processes (see README, "Docker"):
#   webserver (default): docker run -v data:/data -p 3000:3000 sentiment-assets
#   daemon:              docker run -v data:/data sentiment-assets \
#                          sh -c 'sentiment prepare && dagster-daemon run -w /app/workspace.yaml'
#   app:                 docker run -v data:/data -p 7860:7860 -e SENTIMENT_APP_HOST=0.0.0.0 \
#                          -e SENTIMENT_APP_USER=... -e SENTIMENT_APP_PASSWORD=... sentiment-assets python -m gradio_app
CMD ["sh", "-c", "sentiment prepare && dagster-webserver -h 0.0.0.0 -p 3000 -w /app/workspace.yaml"]
