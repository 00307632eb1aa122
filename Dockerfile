FROM python:3.11-slim
WORKDIR /opt/astroflow
COPY pyproject.toml README.md ./
COPY models models
COPY processing processing
COPY storage storage
COPY tasks tasks
COPY flows flows
COPY deployments deployments
RUN pip install --no-cache-dir .
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false
ENTRYPOINT ["astroflow"]
CMD ["--help"]
