"""The organiser's bytes: the catalog (its tables), the raw-frame inventory, the fast
header scanner, FITS frames and products, and the :class:`~.workspace.Workspace` handle.

Nothing here imports ingest (:mod:`astroflow.storage.ingest`).
"""
