"""Credentials kept in a secret store rather than in the worker's environment: a Prefect block.

The store is a plug-in (entry-point group ``astroflow.secret_stores``): astroflow registers
``prefect`` (:func:`astroflow.tasks.blocks.block_values`), which reads a block document
through the Prefect API the run uses, so storage never imports Prefect. A block is loaded when
a repository is opened (at run time, in the process that moves the bytes), its values are
used and redacted, never logged or stored in a handle: the handle carries the block's *name*.
"""

from __future__ import annotations

from typing import Any

from astroflow.models.errors import ConfigError, RepositoryError
from astroflow.storage.plugins import find_plugin

ENTRY_POINT_GROUP = "astroflow.secret_stores"

#: prefect-azure's block type of Azure Blob Storage credentials (its slug in the Prefect API).
AZURE_BLOB_BLOCK = "azure-blob-storage-credentials"


def load_block(name: str, block_type: str) -> dict[str, Any]:
    """The values of the block ``name`` of type ``block_type`` (secrets in clear).

    Raises
    ------
    RepositoryError
        When the store is missing, or has no such block (naming the block and its type).
    """
    try:
        read = find_plugin(ENTRY_POINT_GROUP, "prefect", "secret store")
    except ConfigError as exc:
        raise RepositoryError(f"cannot load block {name!r}: {exc}") from None
    return dict(read(name, block_type))


def load_azure_block(name: str) -> tuple[str | None, str | None]:
    """``(connection_string, account_url)`` of an ``AzureBlobStorageCredentials`` block
    (prefect-azure); either may be None.

    Raises
    ------
    RepositoryError
        When the block does not exist or holds neither.
    """
    values = load_block(name, AZURE_BLOB_BLOCK)
    conn = values.get("connection_string") or None
    url = values.get("account_url") or None
    if not conn and not url:
        raise RepositoryError(
            f"the Azure block {name!r} holds neither a connection string nor an account URL"
        )
    return (str(conn) if conn else None), (str(url) if url else None)
