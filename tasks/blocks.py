"""The ``prefect`` secret store (:mod:`astroflow.storage.credentials`): block documents read
through the Prefect API this process uses, secrets included, without importing the block's
own package (prefect-azure need not be installed where the run executes)."""

from __future__ import annotations

from typing import Any

from astroflow.models.errors import RepositoryError


def block_values(name: str, block_type: str) -> dict[str, Any]:
    """The values of the block document ``name`` of type ``block_type`` (a slug, e.g.
    ``azure-blob-storage-credentials``), secrets in clear.

    Raises
    ------
    RepositoryError
        When the API has no such block or cannot be reached (never quoting a value).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(
                name=name, block_type_slug=block_type, include_secrets=True
            )
    except ObjectNotFound:
        raise RepositoryError(
            f"no Prefect block {name!r} of type {block_type!r}: make one in the UI (Blocks) "
            "or with its class's save()"
        ) from None
    except Exception as exc:
        raise RepositoryError(
            f"cannot read Prefect block {name!r} ({type(exc).__name__}): is the Prefect API "
            "reachable?"
        ) from None
    values: dict[str, Any] = {}
    for key, value in (document.data or {}).items():
        secret = getattr(value, "get_secret_value", None)
        values[key] = secret() if callable(secret) else value
    return values
