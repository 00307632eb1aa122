# astroflow worker image: a Prefect process worker for the `astroflow` work pool.
#
#   docker build -t astroflow .
#   docker run --rm -e PREFECT_API_URL=http://<server>:4200/api \
#       -e AZURE_STORAGE_CONNECTION_STRING=... -v /srv/astroflow:/srv/astroflow astroflow
#
# The install steps are the ones README and CI run (pip install of the project from its own
# pyproject.toml, which pins the Prefect working set).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DASK_TEMPORARY_DIRECTORY=/tmp/dask

WORKDIR /opt/astroflow
COPY pyproject.toml README.md ./
COPY models models
COPY processing processing
COPY storage storage
COPY tasks tasks
COPY flows flows
COPY deployments deployments
RUN python -m pip install --upgrade pip && python -m pip install .

# Deployments' entrypoints (flows/*.py) are resolved from this directory.
CMD ["prefect", "worker", "start", "--pool", "astroflow", "--type", "process"]
