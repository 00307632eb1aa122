# astroflow worker image: a Prefect process worker for the `astroflow` work pool.
#
#   docker build -t astroflow .
#   docker run --rm -e PREFECT_API_URL=http://<server>:4200/api \
#       -e AZURE_STORAGE_CONNECTION_STRING=... -v /srv/astroflow:/srv/astroflow astroflow
#
# The install steps are the ones README and CI run (pip install of the project from its own
# pyproject.toml, constrained to the versions CI tested: constraints.txt).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DASK_TEMPORARY_DIRECTORY=/tmp/dask

# astrometry.net's solve-field for the solve step of reduce; index files are the site's
# choice (Debian's astrometry-data-tycho2-* packages, or a volume named by
# ASTROFLOW_ASTROMETRY_INDEX_DIR): without them, frames keep their header WCS.
RUN apt-get update && apt-get install -y --no-install-recommends astrometry.net \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/astroflow
COPY pyproject.toml README.md constraints.txt ./
COPY models models
COPY processing processing
COPY storage storage
COPY tasks tasks
COPY flows flows
COPY deployments deployments
RUN python -m pip install --upgrade pip && python -m pip install . -c constraints.txt

# The combine kernels compile once, here, not in the first recipe of every container (~18 s):
# numba's cache goes to a folder the worker's user can read.
ENV NUMBA_CACHE_DIR=/opt/astroflow/numba-cache
RUN python -c "import numpy as np; from astroflow.processing.combine import clipped_mean; \
clipped_mean(np.random.default_rng(0).random((5, 3, 300), dtype=np.float32), 3.0, 3)"

# Runs as an ordinary user; deployments' entrypoints are module paths
# (astroflow.flows.ingest:ingest_images), so no working directory is needed.
RUN useradd --create-home --uid 1000 astroflow && chown -R astroflow /opt/astroflow/numba-cache
USER astroflow
WORKDIR /home/astroflow
# The worker's health server (Prefect's --with-healthcheck, port 8080) answers /health while
# the worker polls its pool: Docker marks a container whose worker stopped polling unhealthy
# (and an orchestrator, or a restart policy watching health, replaces it).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health', timeout=4)"
CMD ["prefect", "worker", "start", "--pool", "astroflow", "--type", "process", "--with-healthcheck"]
