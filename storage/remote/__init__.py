"""The remote data manager (after SunPy's design, pooch's manners).

- :mod:`.manager`: the API (:class:`RemoteData`: ``fetch``, ``fetch_many``, ``require``,
  ``get``, ``open``, ``override``, ``skip_hash_check``, queries);
- :mod:`.records`: the database of cached versions and their URLs;
- :mod:`.transport`: one downloader per URL scheme, typed errors.
"""

from astroflow.storage.remote.manager import NotCachedError, RemoteData, default_remote
from astroflow.storage.remote.records import CachedFile, hash_file, parse_hash
from astroflow.storage.remote.transport import ConnectionFaultError, TransportError

__all__ = [
    "CachedFile",
    "ConnectionFaultError",
    "NotCachedError",
    "RemoteData",
    "TransportError",
    "default_remote",
    "hash_file",
    "parse_hash",
]
