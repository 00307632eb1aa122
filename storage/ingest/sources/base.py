"""What every image source shares: the result of a query, the base class, id collisions.

A source is a plug-in: a subclass of :class:`ImageSource` that declares its ``source_type``,
its ``config_model`` (the pydantic model of its config section) and whether it may read local
files, found through the ``astroflow.sources`` entry-point group under its ``source_type``
(astroflow's own are registered in ``pyproject.toml`` the same way), so another package adds
one without editing astroflow. :func:`source_class` finds one;
:func:`astroflow.storage.ingest.sources.query_source` asks the configured one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from astroflow.models.errors import ConfigError, ErrorReport, InvalidKeyError, ProcessingError
from astroflow.models.ingest import Candidate, PipelineConfig, Reject
from astroflow.storage.plugins import find_plugin, plugin_names

ENTRY_POINT_GROUP = "astroflow.sources"
EXTENSION_REMAPPING = {"jpeg": "jpg", "tif": "tiff"}
IMAGE_EXTENSIONS = frozenset({"jpg", "png", "tiff", "fits", "fit", "fts"})


def web_picture_extension(url: str, what: str) -> str:
    """The image extension (lower case, ``jpeg`` -> ``jpg``) of a picture a feed or an archive
    names on the web.

    Raises
    ------
    ProcessingError
        Naming ``what`` (``resource_url``, a record's Original resource), when the URL is not
        http(s) with a host (a feed may never make us read a local file or another
        filesystem) or does not end in an image file extension.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ProcessingError(
            f"{what} {url[:200]!r} is not an http(s) URL: a feed may not name local files or "
            "other filesystems"
        )
    name = parts.path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    ext = EXTENSION_REMAPPING.get(ext, ext)
    if ext not in IMAGE_EXTENSIONS:
        raise ProcessingError(
            f"{what} {url[:200]!r} does not end in an image file extension "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return ext


@dataclass
class FeedResult:
    """Candidates, rejects and per-entry errors from one query of a source."""

    candidates: list[Candidate] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    errors: list[ErrorReport] = field(default_factory=list)

    def without_collisions(self) -> FeedResult:
        """The result with every id that two entries share taken out, each such entry
        reported as an error naming the others (``M42`` and ``m42`` both give ``nasa_m42``):
        fetching either would race for one folder, and which one the user meant is theirs to
        say (rename one upstream, or ignore one with ``skip.flag``)."""
        by_id: dict[str, list[Candidate | Reject]] = defaultdict(list)
        for entry in [*self.candidates, *self.rejects]:
            by_id[entry.id].append(entry)
        clashes = {i: entries for i, entries in by_id.items() if len(entries) > 1}
        if not clashes:
            return self
        errors = list(self.errors)
        for uid, entries in clashes.items():
            names = [e.source_id for e in entries]
            for entry in entries:
                others = ", ".join(n for n in names if n != entry.source_id)
                err = InvalidKeyError(
                    f"{entry.source_id} and {others} all give the id {uid!r}: neither is "
                    "fetched (rename one at the source, or write skip.flag for one)"
                )
                errors.append(ErrorReport.from_exception(err, "fetch", [entry.source_id]))
        return FeedResult(
            candidates=[c for c in self.candidates if c.id not in clashes],
            rejects=[r for r in self.rejects if r.id not in clashes],
            errors=errors,
        )


class ImageSource:
    """A source of images: the plug-in base.

    A subclass sets ``source_type`` (the config's ``source_type`` value and its entry-point
    name), ``config_model`` (validates the config section of that name, which it receives as
    ``self.section``) and ``reads_local_files`` (True only for sources whose images are files
    the operator configured, never names a feed chose), and answers :meth:`query`.
    """

    source_type: ClassVar[str] = ""
    config_model: ClassVar[type[BaseModel]] = BaseModel
    reads_local_files: ClassVar[bool] = False

    def __init__(self, section: Any) -> None:
        self.section = section

    @classmethod
    def from_config(cls, config: PipelineConfig) -> ImageSource:
        """The source configured by the section named ``source_type``.

        Raises
        ------
        ConfigError
            When the section does not validate, naming the section and the offending keys.
        """
        try:
            section = cls.config_model.model_validate(config.section(cls.source_type))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in (cls.source_type, *err['loc']))}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(problems) from None
        return cls(section)

    def query(self) -> FeedResult:
        """Every image the source offers now (candidates), those it offers but we cannot
        ingest (rejects, with the reason), and entries that could not be read (errors)."""
        raise NotImplementedError

    def resolve(self, candidate: Candidate) -> Candidate | Reject:
        """The complete candidate (image URL, WCS fields, metadata) for one whose
        ``metadata_url`` is still to be read, or a reject saying why it cannot be ingested.

        Called when the image is fetched, never for one that is done: a source whose query
        lists ids only (Djangoplicity) reads each record once, not on every query. The base
        has nothing to add.

        Raises
        ------
        ProcessingError
            When the record cannot be read or is malformed.
        """
        return candidate


def source_class(source_type: str) -> type[ImageSource]:
    """The source plug-in registered as ``source_type`` in the ``astroflow.sources`` group.

    Raises
    ------
    ConfigError
        When no installed package registers it (naming those that are), or two do.
    """
    cls = find_plugin(ENTRY_POINT_GROUP, source_type, "source_type")
    if not (isinstance(cls, type) and issubclass(cls, ImageSource)):
        raise ConfigError(
            f"source_type {source_type!r}: its {ENTRY_POINT_GROUP} entry point is not an "
            "ImageSource subclass"
        )
    return cls


def source_types() -> list[str]:
    """Every registered ``source_type``, sorted."""
    return plugin_names(ENTRY_POINT_GROUP)


def reads_local_files(source_type: str) -> bool:
    """Whether images of this source may be local files (False for an unknown one)."""
    try:
        return source_class(source_type).reads_local_files
    except ConfigError:
        return False
