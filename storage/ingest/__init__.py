"""Ingest's bytes: image sources, repositories, the published-image layout, WTML, image and
tile files, AVM tags, WCS readers and the work folder.

Nothing here imports the organiser (:mod:`astroflow.storage.organiser`); the ``workspace``
image source, which reads a workspace, is :mod:`astroflow.storage.workspace_source`.
"""
