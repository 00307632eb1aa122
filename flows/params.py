"""The parameters of the flows as an operator fills them in: a type and a description each.

Prefect 3.8 builds a deployment's run form from ``parameter_openapi_schema``; it takes
descriptions from Google-style docstrings only, and shows ``str | None`` as a type toggle. A
parameter here is an annotated type whose JSON schema (pydantic ``WithJsonSchema``) carries
its description and a plain type: optional fields are plain fields with no value, choices are
dropdowns. Validation is unchanged (``None`` is still accepted where the default is None).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, WithJsonSchema


def described(tp: Any, description: str, *, optional: bool = False) -> Any:
    """``tp`` (or ``tp | None`` when ``optional``) whose form field shows ``description``."""
    schema = TypeAdapter(tp).json_schema()
    schema.pop("title", None)
    annotated = tp | None if optional else tp
    return Annotated[annotated, WithJsonSchema({**schema, "description": description})]


RUNNER_CHOICES = ("threads", "dask-local")
DaskAddress = Annotated[str, Field(pattern=r"^(tcp|tls|ucx|inproc)://")]
RunnerChoice = Literal["threads", "dask-local"]

Repository = described(
    str,
    "WWT data repository: a local folder, file:///path, or az://container/prefix or "
    "abfs://container@account.dfs.core.windows.net/prefix (Azure Blob). Holds "
    "toasty-pipeline-config.yaml.",
)
WorkDir = described(
    str,
    "Local work folder of the ingest stages (cache_todo, out_todo, out_done, downloads).",
)
AzureConnEnv = described(
    str,
    "Name of the environment variable (on the worker) that holds the Azure connection "
    "string; empty: adlfs reads AZURE_STORAGE_CONNECTION_STRING and friends.",
    optional=True,
)
AzureBlock = described(
    str,
    "Name of a Prefect block (prefect-azure's Azure Blob Storage Credentials) holding the "
    "Azure connection string or account URL, instead of azure_conn_env; loaded when the "
    "repository is opened, never logged.",
    optional=True,
)
Force = described(bool, "Fetch every image again, even those already published or pending.")
Limit = described(int, "Fetch at most this many images (in feed order); empty: all.", optional=True)
PngLevel = described(
    int,
    "Deflate level of the PNG tiles, 0-9: 1-3 ISA-L's, 0 and 4-9 zlib's (1: the measured best "
    "trade-off).",
)
TileWorkers = described(
    int, "Threads encoding PNG tiles per image; empty: one per CPU.", optional=True
)
Workspace = described(
    str, "Workspace folder: raw FITS frames arrive in its root (.fits, .fits.Z, .fits.gz)."
)
Refresh = described(bool, "Forget the inventory and rebuild it from the files.")
Rules = described(
    str,
    "Ruleset name (generic-ccd, eso-imager) or a YAML path; empty: the session's own.",
    optional=True,
)
Session = described(str, "Session id; empty: the workspace's current session.", optional=True)
Overwrite = described(bool, "Redo products that exist (or failed) with unchanged inputs.")
Recipes = described(
    list[str], "Only these recipes (mbias, mdark, mflat, reduce); empty: all.", optional=True
)
TaskRunner = Annotated[
    RunnerChoice | DaskAddress,
    WithJsonSchema(
        {
            "anyOf": [
                # titles: the run form labels the two forms of the field with them
                {"title": "Here", "type": "string", "enum": list(RUNNER_CHOICES)},
                {
                    "title": "Dask scheduler",
                    "type": "string",
                    "pattern": r"^(tcp|tls|ucx|inproc)://",
                },
            ],
            "description": "Where tasks run: threads (this process), dask-local (a Dask "
            "LocalCluster of 2 workers), or the address of a Dask scheduler (tcp://host:8786).",
        }
    ),
]
PublishUrlPrefix = described(
    str, "URL the repository is served under (written into a new repository's config)."
)
FolderName = described(str, "Name of the WWT folder of a new repository's root index.wtml.")
# (no angle brackets in descriptions: the run form reads them as HTML and drops them)
NightWorkDir = described(
    str, "Ingest work folder; empty: the folder ingest inside the workspace.", optional=True
)
Review = described(
    bool,
    "Pause after processing until an operator approves or rejects each image in the resume "
    "form (the review artifact shows them); only approved images are published.",
)
ReviewTimeout = described(
    int, "Seconds to wait for the review; when they pass, nothing is published."
)
