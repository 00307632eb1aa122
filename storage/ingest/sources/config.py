"""The repository's pipeline config, ``toasty-pipeline-config.yaml`` (toasty's keys)."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from astroflow.models.errors import ConfigError
from astroflow.models.ingest import CONFIG_FILE, PipelineConfig
from astroflow.storage.ingest.repository import Repository
from astroflow.storage.ingest.sources.base import source_class


def read_pipeline_config(repo: Repository) -> PipelineConfig:
    """Read and validate ``toasty-pipeline-config.yaml`` at the repository root.

    Raises
    ------
    ConfigError
        Naming the file and the offending key.
    """
    where = f"{repo.url}/{CONFIG_FILE}"
    try:
        text = repo.read_text(CONFIG_FILE)
    except FileNotFoundError:
        raise ConfigError(
            f"{where} does not exist: the repository needs a pipeline config"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    try:  # the source plug-in exists and its section validates
        source_class(config.source_type).from_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config
