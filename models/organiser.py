"""Values of the data organiser: frames, predicted sets and products, SOF plans."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrameInfo(BaseModel):
    """What the organiser knows about one raw frame (from its header, through the rules).

    ``exptime`` is in seconds, rounded to the ruleset's decimals (0.01 s by default) so that
    float noise does not split sets; ``mjd_obs`` in days; ``night`` is the date of
    ``MJD-OBS - 15 h`` (ISO, ``YYYY-MM-DD``), so that one night's frames share it.
    """

    model_config = ConfigDict(frozen=True)

    file: str
    kind: str
    instrument: str = ""
    binning: str = "1x1"
    readout: str = ""
    gain: str = ""
    filter: str = ""
    exptime: float
    mjd_obs: float
    night: str
    object: str = ""
    rules: str = ""  # the ruleset that classified it (a workspace may hold several cameras)

    def key(self, name: str) -> str:
        """The value of a grouping/matching key as text."""
        if name == "exptime":
            return f"{self.exptime:g}"
        return str(getattr(self, name))

    @property
    def path(self) -> str:
        """Workspace-relative path of the frame once organised."""
        return f"raw/{self.night}/{self.file}"


class SetPlan(BaseModel):
    """A predicted recipe input set (``raw_frame_sets`` row)."""

    model_config = ConfigDict(frozen=True)

    name: str  # also the SOF's stem and the product's stem
    recipe: str
    recipe_order: int
    night: str
    keys: tuple[tuple[str, str], ...]  # grouping key values, sorted by key
    frames: tuple[str, ...]  # workspace-relative raw paths, sorted
    mjd: float  # mean MJD-OBS of the frames
    exptime: float  # mean exposure time, s
    complete: bool
    reason: str = ""

    def key(self, name: str) -> str:
        return dict(self.keys).get(name, "")


class ProductPlan(BaseModel):
    """A predicted product (``product_frames`` row), named before anything runs."""

    model_config = ConfigDict(frozen=True)

    name: str
    set_name: str
    recipe: str
    recipe_order: int
    tag: str
    filepath: str  # session-relative: reduced/<night>/<recipe>/<name>.fits
    night: str
    mjd: float
    exptime: float
    keys: tuple[tuple[str, str], ...]
    complete: bool

    def key(self, name: str) -> str:
        if name == "exptime":
            return f"{self.exptime:g}"
        return dict(self.keys).get(name, "")


class SofLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    tag: str


class SofPlan(BaseModel):
    """The set-of-files of one set in one session, with whether every calibration was found."""

    model_config = ConfigDict(frozen=True)

    set_name: str
    recipe: str
    recipe_order: int
    lines: tuple[SofLine, ...]
    complete: bool
    reason: str = ""
    calibrations: tuple[str, ...] = ()  # product names used
    substitutions: tuple[str, ...] = ()  # "<used> replaces <failed> (failed)"
    skipped: tuple[str, ...] = ()  # "<candidate>: <why>" (older than the recipe's max age)
    rules: str = ""  # the ruleset whose recipe makes it

    def text(self) -> str:
        """The SOF file: a comment header, then ``path  TAG`` lines."""
        head = [f"# astroflow SOF {self.set_name} (recipe {self.recipe})"]
        if not self.complete:
            head.append(f"# INCOMPLETE: {self.reason}")
        head.extend(f"# SUBSTITUTED: {sub}" for sub in self.substitutions)
        head.extend(f"# SKIPPED: {skip}" for skip in self.skipped)
        width = max((len(line.path) for line in self.lines), default=0)
        body = [f"{line.path.ljust(width)}  {line.tag}" for line in self.lines]
        return "\n".join(head + body) + "\n"


class PrepareSummary(BaseModel):
    """What one prepare did."""

    model_config = ConfigDict(frozen=True)

    session: str
    raw_frames: int
    new_frames: int
    removed_frames: int
    rejected: tuple[tuple[str, str], ...]  # (file, reason)
    headers_read: int
    sets: int
    incomplete_sets: int
    products: int
    sofs_written: int
    database_changed: bool

    def headline(self) -> str:
        """``41 raw frames (3 new, 2 rejected), 15 products predicted, 2 sets incomplete``."""
        return (
            f"{self.raw_frames} raw frames ({self.new_frames} new, {len(self.rejected)} "
            f"rejected), {self.products} products predicted, {self.incomplete_sets} sets "
            "incomplete"
        )
