"""The organiser's workspace: one handle for its folder, its database and its sessions.

Layout (after soxspipe)::

    <workspace>/raw/<night>/*.fits   raw frames, by night (storage.inventory)
    <workspace>/misc/                anything else (with the reason recorded in the database)
    <workspace>/sessions/<id>/sof/   one SOF per set
    <workspace>/sessions/<id>/reduced/<night>/<recipe>/<name>.fits   products
    <workspace>/sessions/<id>/qc/    QC tables
    <workspace>/sessions/<id>/settings/qc.yaml   the session's QC ranges
    <workspace>/astroflow.db         SQLite database (default; ASTROFLOW_DATABASE_URL else)

:class:`Workspace` is the only place that builds these paths and that decides which session a
command means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from astroflow.models.cascade import WorkspaceRef
from astroflow.models.errors import ConfigError
from astroflow.models.organiser import SofLine
from astroflow.models.rules import DEFAULT_RULESET
from astroflow.models.tables import Session
from astroflow.storage.database import Database, database_url
from astroflow.storage.database import writable as folder_writable
from astroflow.storage.files import write_bytes_atomic
from astroflow.storage.keys import validate_session_id
from astroflow.storage.organiser import catalog

log = logging.getLogger(__name__)

DEFAULT_SESSION = "base"
QC_DEFAULTS = Path(__file__).resolve().parents[2] / "models" / "settings" / "qc-default.yaml"
SESSION_FOLDERS = ("sof", "qc", "reduced", "settings")


@dataclass(frozen=True)
class Workspace:
    """A workspace folder and the URL of its database.

    Attributes
    ----------
    root
        The workspace folder (absolute).
    database_url
        Its organiser database (SQLAlchemy URL).
    """

    root: Path
    database_url: str

    @classmethod
    def open(cls, path: str | Path, url: str | None = None, *, writable: bool = False) -> Workspace:
        """The workspace at ``path`` (``~`` expanded, made absolute).

        Parameters
        ----------
        writable
            The caller will write there (prepare, calibrate, sessions): refuse a workspace
            that cannot be written before anything starts.

        Raises
        ------
        ConfigError
            When ``path`` is not a folder, or is read-only and ``writable`` was asked for.
        """
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise ConfigError(f"workspace {str(path)!r} is not a folder")
        if writable and not folder_writable(root):
            raise ConfigError(
                f"workspace {root} is read-only: frames, SOF files, products and the database "
                "are written there; make it writable (or work on a copy)"
            )
        return cls(root, url or database_url(root))

    @classmethod
    def at(cls, path: str | Path, url: str | None = None) -> Workspace:
        """The workspace at ``path`` without checking the folder (tasks, given a checked one)."""
        root = Path(path)
        return cls(root, url or database_url(root))

    @classmethod
    def from_ref(cls, ref: WorkspaceRef) -> Workspace:
        """The workspace a handle names (tasks, given a checked one)."""
        return cls(Path(ref.root), ref.database_url)

    @property
    def ref(self) -> WorkspaceRef:
        """This workspace's handle (what flows give tasks)."""
        return WorkspaceRef(root=self.root, database_url=self.database_url)

    def database(self) -> Database:
        """The migrated database (engines are shared per URL within a process)."""
        return Database(self.root, self.database_url)

    def has_database(self) -> bool:
        """Whether an organiser database exists (``astroflow prep`` has run)."""
        if not self.database_url.startswith("sqlite:///"):
            return True
        return Path(self.database_url.removeprefix("sqlite:///")).exists()

    # -- paths --------------------------------------------------------------------------------

    def session_root(self, session: str) -> str:
        """The workspace-relative folder of a session (``sessions/<id>``), as SOF lines use."""
        return f"sessions/{validate_session_id(session)}"

    def session_dir(self, session: str) -> Path:
        """The folder of a session."""
        return self.root / self.session_root(session)

    def product_path(self, session: str, filepath: str) -> Path:
        """Where a product (its session-relative ``filepath``) lives."""
        return self.session_dir(session) / filepath

    def sof_dir(self, session: str) -> Path:
        return self.session_dir(session) / "sof"

    def qc_file(self, session: str) -> Path:
        """The session's QC ranges file (``settings/qc.yaml``)."""
        return self.session_dir(session) / "settings" / "qc.yaml"

    def state_dir(self) -> Path:
        """astroflow's own bookkeeping (fingerprints): ``.astroflow/``."""
        return self.root / ".astroflow"

    def ensure_session_dirs(self, session: str) -> Path:
        root = self.session_dir(session)
        for sub in SESSION_FOLDERS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        return root

    # -- sessions -----------------------------------------------------------------------------

    def sessions(self) -> list[Session]:
        return catalog.sessions(self.database())

    def session_row(self, session: str | None = None) -> Session:
        """The session ``session`` (default: the current one).

        Raises
        ------
        InvalidKeyError
            For an id that is not a session id.
        ConfigError
            When there is no such session (or no session at all).
        """
        db = self.database()
        if session is None:
            current = catalog.current_session(db)
            if current is None:
                raise ConfigError(f"{self.root}: no session; run `astroflow prep` first")
            return current
        validate_session_id(session)
        row = next((s for s in catalog.sessions(db) if s.name == session), None)
        if row is None:
            raise ConfigError(f"no session {session!r} in {self.root}")
        return row

    def resolve_session(self, session: str | None = None) -> str:
        """The id of :meth:`session_row`."""
        return self.session_row(session).name

    def current_or_first_session(self, rules: str = DEFAULT_RULESET) -> str:
        """The current session; else the first one made current; else a new ``base`` session
        with ``rules``. Its folders exist afterwards."""
        db = self.database()
        current = catalog.current_session(db)
        if current is None:
            existing = catalog.sessions(db)
            if existing:
                catalog.switch_session(db, existing[0].name)
                current = catalog.current_session(db)
            else:
                current = catalog.create_session(db, DEFAULT_SESSION, rules=rules)
        assert current is not None
        self.ensure_session_dirs(current.name)
        return current.name

    def create_session(self, name: str | None = None, rules: str | None = None) -> str:
        """Create a session and make it current; it starts with no statuses of its own and
        the current session's rules unless ``rules`` names others. Without a name it gets
        one after soxspipe's rule: the time, ``20261202t013045`` (letters, digits, at most 16).

        Its ``settings/`` folder gets a copy of the default QC ranges (``qc.yaml``, to edit)
        and ``session.yaml`` with the session's other choices (its rules).
        """
        db = self.database()
        if name is None:
            taken = {s.name for s in catalog.sessions(db)}
            stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
            name = next(n for n in (stamp, *(f"{stamp}{i}" for i in range(10))) if n not in taken)
        validate_session_id(name)
        current = catalog.current_session(db)
        chosen = rules or (current.rules if current else DEFAULT_RULESET)
        catalog.create_session(db, name, rules=chosen)
        self.ensure_session_dirs(name)
        self.write_default_settings(name)
        write_bytes_atomic(
            self.session_dir(name) / "settings" / "session.yaml",
            f"# choices of session {name} (the database holds what is in force)\n"
            f"rules: {chosen}\n".encode(),
        )
        return name

    def switch_session(self, name: str) -> None:
        """Make another session current."""
        catalog.switch_session(self.database(), validate_session_id(name))

    # -- files of a session -------------------------------------------------------------------

    def write_sofs(self, session: str, sofs: dict[str, str]) -> int:
        """Write SOF files (name -> text) for a session, only those whose bytes differ, and
        remove stale ones. Returns the number of files written or removed."""
        folder = self.sof_dir(session)
        folder.mkdir(parents=True, exist_ok=True)
        changed = 0
        for name, text in sofs.items():
            path = folder / f"{name}.sof"
            data = text.encode("utf-8")
            if path.exists() and path.read_bytes() == data:
                continue
            write_bytes_atomic(path, data)
            changed += 1
        for path in folder.glob("*.sof"):
            if path.stem not in sofs:
                path.unlink()
                changed += 1
        return changed

    def qc_ranges(
        self, session: str, declared: dict[str, dict[str, tuple[float, float]]] | None = None
    ) -> dict[str, dict[str, tuple[float, float]]]:
        """Acceptable QC ranges per recipe: the shipped defaults and those the recipes declare
        (``declared``: recipe -> metric -> range; plug-ins' metrics), overridden metric by
        metric by the session's ``settings/qc.yaml`` (what it does not name keeps its
        default). Bounds are inclusive.

        Raises
        ------
        ConfigError
            Naming the file and the key, for an unknown recipe or metric (with the known
            names), a non-numeric or an inverted range.
        """
        ranges = read_qc_file(QC_DEFAULTS, None)
        for recipe, metrics in (declared or {}).items():
            ranges[recipe] = {**metrics, **ranges.get(recipe, {})}
        path = self.qc_file(session)
        if path.exists():
            for recipe, metrics in read_qc_file(path, ranges).items():
                ranges[recipe] = {**ranges[recipe], **metrics}
        return ranges

    def write_default_settings(self, session: str) -> Path:
        """A new session's ``settings/qc.yaml``: a copy of the defaults, to edit."""
        target = self.qc_file(session)
        if not target.exists():
            write_bytes_atomic(target, QC_DEFAULTS.read_bytes())
        return target


def read_qc_file(
    path: Path, known: dict[str, dict[str, tuple[float, float]]] | None
) -> dict[str, dict[str, tuple[float, float]]]:
    """The ranges of one QC file, checked: ``recipe: {metric: [min, max]}`` with min <= max,
    and (given ``known``, the defaults) only recipes and metrics that exist.

    Raises
    ------
    ConfigError
        Naming the file and the key.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must map recipe names to metric ranges")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for recipe, ranges in data.items():
        if known is not None and recipe not in known:
            raise ConfigError(
                f"{path}: unknown recipe {recipe!r} (known: {', '.join(sorted(known))})"
            )
        if not isinstance(ranges or {}, dict):
            raise ConfigError(f"{path}: {recipe} must map metric names to [min, max]")
        out[recipe] = {}
        for name, bounds in (ranges or {}).items():
            if known is not None and name not in known[recipe]:
                raise ConfigError(
                    f"{path}: unknown metric {recipe}.{name} (known for {recipe}: "
                    f"{', '.join(sorted(known[recipe]))})"
                )
            try:
                lo, hi = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{path}: {recipe}.{name} must be [min, max], got {bounds!r}"
                ) from None
            if lo > hi:
                raise ConfigError(f"{path}: {recipe}.{name} is inverted: [{lo:g}, {hi:g}]")
            out[recipe][name] = (lo, hi)
    return out


def read_sof(path: Path) -> list[SofLine]:
    """The ``path  TAG`` lines of a SOF file (comments and blank lines left out).

    Raises
    ------
    ConfigError
        When the file cannot be read, naming it.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read SOF file {path}: {exc.strerror or exc}") from None
    out = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        out.append(SofLine(path=fields[0], tag=fields[1] if len(fields) > 1 else ""))
    return out
