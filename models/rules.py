"""Organiser rules: how to read, classify and group raw frames, and the cascade's recipes.

A ruleset is a YAML file (``models/rulesets/*.yaml`` ship with the package; a workspace may
select another by name or path). Recipes are listed in cascade order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astroflow.models.errors import ConfigError

# Frame attributes a ruleset maps to header keywords.
FIELDS = (
    "imagetyp",
    "exptime",
    "filter",
    "xbinning",
    "ybinning",
    "gain",
    "readout",
    "instrument",
    "date_obs",
    "time_obs",
    "mjd_obs",
    "object",
    "catg",
    "tech",
)
# Keys frames and products can be grouped and matched on.
GROUP_KEYS = ("instrument", "binning", "readout", "gain", "filter", "exptime", "night")


class Classifier(BaseModel):
    """Frames whose header values (case-insensitive, trimmed) match all ``match`` entries are
    of ``kind``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    match: dict[str, tuple[str, ...]]

    @field_validator("match")
    @classmethod
    def _fields(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for key in value:
            if key not in FIELDS:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        return {k: tuple(v.strip().lower() for v in vals) for k, vals in value.items()}


class CalibrationNeed(BaseModel):
    """A calibration a recipe needs: the product of an earlier recipe with ``match`` keys equal,
    ranked by |delta exptime| when ``rank_by_exptime``, then by |delta MJD|. An ``optional``
    one is used when a usable product matches; without one the set stays complete (its SOF
    comment says so)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipe: str
    match: tuple[str, ...] = ()
    rank_by_exptime: bool = False
    tag: str
    # a calibration used when one matches, not missed when none does (a bad-pixel mask)
    optional: bool = False

    @field_validator("match")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if key not in GROUP_KEYS:
                raise ValueError(f"unknown match key {key!r} (known: {', '.join(GROUP_KEYS)})")
        return value


#: A detector property: a number, a FITS section literal (``'[4:13,1:520]'``), or the name of
#: the header keyword that holds it (looked up in the frame's extension, then its primary).
DetectorValue = float | str


class Detector(BaseModel):
    """How to pre-process an amplifier's or extension's raw pixels (IRAF/NOAO ``BIASSEC`` /
    ``TRIMSEC`` / ``DATASEC``, ESO ``DET OUTi``...), before bias, dark and flat.

    Each of ``overscan``, ``trim``, ``gain``, ``read_noise`` and ``saturation`` is a value or
    the header keyword that holds it (a string starting with ``[`` is a section literal, any
    other string a keyword). A property the header lacks is skipped, unless it is
    ``required`` (then the frame fails with an error naming the frame and the keyword).

    Attributes
    ----------
    overscan
        Overscan section(s) (one per readout direction), in raw pixels.
    overscan_axis
        ``columns``: the strip is columns beside the image and gives one level per row
        (ccdproc's ``overscan_axis=1``); ``rows``: a strip of rows, one level per column;
        ``auto``: the strip's longer side runs along the readout direction.
    overscan_method, overscan_order
        ``median`` or ``mean`` of each row (column) of the strip; with an order, a
        least-squares polynomial of that order fitted to them.
    trim
        The section of real data to keep (``TRIMSEC``, ``DATASEC``).
    gain
        e-/ADU (ESO's ``DET OUTi CONAD``); products are then in electrons.
    read_noise
        e-, for the variance.
    saturation
        ADU of the raw frame at or above which a pixel is saturated.
    extensions
        Overrides per extension name (``SCI``, ``CHIP1``...).
    outputs
        ``eso``: one image read by several outputs (amplifiers), each described by ESO's
        ``DET OUTi`` keywords (``X``/``Y`` location of the output, ``NX``/``NY`` valid pixels,
        ``PRSCX``/``OVSCX``/``PRSCY``/``OVSCY`` pre- and overscan, ``CONAD`` e-/ADU, ``RON``
        e-; ``DET OUTPUTS`` of them, or the unnumbered ``DET OUT`` keywords of a one-output
        extension): each output is overscan-subtracted with its own strip and gain-corrected
        with its own ``CONAD``, and the outputs' valid pixels are joined into one image
        (pre- and overscans dropped). ``gain``/``read_noise`` given as numbers apply to every
        output; ``overscan``/``trim`` are then not used. A frame without the keywords is
        processed as it is (a ``required`` property still fails it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    overscan: tuple[DetectorValue, ...] = ()
    overscan_axis: Literal["columns", "rows", "auto"] = "auto"
    overscan_method: Literal["median", "mean"] = "median"
    overscan_order: int | None = Field(default=None, ge=0, le=9)
    trim: DetectorValue | None = None
    gain: DetectorValue | None = None
    read_noise: DetectorValue | None = None
    saturation: DetectorValue | None = None
    required: tuple[Literal["overscan", "trim", "gain", "read_noise", "saturation"], ...] = ()
    extensions: dict[str, dict[str, object]] = {}
    outputs: Literal["eso"] | None = None

    @field_validator("overscan", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str | int | float) else value

    @model_validator(mode="after")
    def _outputs_own_their_sections(self) -> Detector:
        if self.outputs is not None and (self.overscan or self.trim is not None):
            raise ValueError(
                f"outputs: {self.outputs} reads each output's sections from the header; "
                "leave overscan and trim out"
            )
        return self

    def for_extension(self, name: str) -> Detector:
        """The definition of extension ``name`` (its overrides applied)."""
        extra = self.extensions.get(name) or self.extensions.get(name.upper())
        if not extra:
            return self
        return Detector.model_validate(
            {**self.model_dump(exclude={"extensions"}), **extra, "extensions": {}}
        )


class Site(BaseModel):
    """Where the instrument is: the night of a frame starts at local noon there.

    Attributes
    ----------
    longitude
        Degrees east (west negative); without it the header's (``longitude_keywords``, then
        ``OBSGEO-X/Y/Z``), then the ``ASTROFLOW_SITE_LONGITUDE`` setting, then the default
        rule (the date of MJD - 15 h).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    longitude: float | None = Field(default=None, ge=-180, le=360)
    longitude_keywords: tuple[str, ...] = ("OBSGEO-L", "LONGITUD", "SITELONG", "ESO TEL GEOLON")


class CosmicRays(BaseModel):
    """Cosmic-ray detection of a ``reduce`` recipe (L.A.Cosmic through astroscrappy; its
    parameters and defaults, ccdproc's ``cosmicray_lacosmic``'s). ``clean``: replace the
    flagged pixels too (else they are only flagged, MASK bit 8)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sigclip: float = Field(4.5, gt=0)
    sigfrac: float = Field(0.3, gt=0)
    objlim: float = Field(5.0, gt=0)
    niter: int = Field(4, ge=1)
    clean: bool = False


class Combine(BaseModel):
    """How a master recipe combines its frames (ccdproc's ``Combiner`` options).

    ``method``: ``mean`` (the default: astroflow's clipped-mean kernel) or ``median``;
    ``scale: median``: each frame multiplied by 1/its median first (flats to a common level);
    ``weights: variance``: a weighted mean, each frame weighted by 1/its variance (the square
    of its MAD standard deviation); ``sigma``/``maxiters``: the per-pixel clipping about the
    median with the MAD standard deviation (``sigma: null``: none).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["mean", "median"] = "mean"
    scale: Literal["median"] | None = None
    weights: Literal["variance"] | None = None
    sigma: float | None = Field(3.0, gt=0)
    maxiters: int = Field(3, ge=1)

    @property
    def default(self) -> bool:
        """Whether this is the clipped mean the fast kernel computes."""
        return (
            self.method == "mean"
            and self.scale is None
            and self.weights is None
            and (self.sigma is not None)
        )


class BadPixelMask(BaseModel):
    """How an ``mbpm`` recipe derives the instrument's bad-pixel mask.

    Its flats (bias- and dark-corrected) are split by level: those at most ``sqrt(lowest *
    highest)`` and those above, each combined (the recipe's ``combine``); pixels that respond
    differently at the two levels (dead, hot, non-linear, bad columns) stand out in the ratio
    of the two, which ``ccdproc.ccdmask`` reads with its parameters (IRAF's ``ccdmask``:
    a median over ``ncmed`` x ``nlmed`` pixels, deviations beyond ``lsigma``/``hsigma`` of the
    local ``ncsig`` x ``nlsig`` sigma). With a ``MASTER_DARK`` in its SOF, pixels whose dark
    current exceeds the median by ``hot_sigma`` MAD standard deviations are added as hot.

    Attributes
    ----------
    min_level_ratio
        The high flats' median level over the low flats' must be at least this (flats of one
        level hide the pixels that only misbehave at another).
    hot_sigma
        Threshold of hot pixels in the master dark (MAD sigma); ``null``: darks not used.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_level_ratio: float = Field(1.5, gt=1)
    ncmed: int = Field(7, ge=1)
    nlmed: int = Field(7, ge=1)
    ncsig: int = Field(15, ge=3)
    nlsig: int = Field(15, ge=3)
    lsigma: float = Field(9.0, gt=0)
    hsigma: float = Field(9.0, gt=0)
    findbadcolumns: bool = False
    byblocks: bool = False
    ngood: int = Field(5, ge=1)
    hot_sigma: float | None = Field(10.0, gt=0)


class Solve(BaseModel):
    """The astrometric solution of a ``reduce`` recipe's frames (astrometry.net's
    ``solve-field`` on the sources of the image-quality step).

    Attributes
    ----------
    enabled
        ``true``: always (a missing solver or index is then an error naming the setting);
        ``false``: never; ``null`` (the default): when ``solve-field`` is installed and the
        setting ``ASTROFLOW_ASTROMETRY_INDEX_DIR`` names folders holding index files.
    required
        A frame that does not solve fails (else it keeps its header WCS, with a noncritical
        report).
    time_limit_s
        CPU seconds the solver may spend on one frame (``--cpulimit``).
    sip_order
        0: a TAN solution; 2 or more: TAN-SIP distortion of that order.
    radius_deg
        Search radius around the header's position (when it has one).
    scale_tolerance
        The pixel scale is searched within this fraction of the header's (when it has one).
    max_sources
        The brightest sources given to the solver.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool | None = None
    required: bool = False
    time_limit_s: float = Field(30.0, gt=0)
    sip_order: int = Field(0, ge=0, le=5)
    radius_deg: float = Field(2.0, gt=0)
    scale_tolerance: float = Field(0.1, gt=0, lt=1)
    max_sources: int = Field(300, ge=10)

    @field_validator("sip_order")
    @classmethod
    def _order(cls, value: int) -> int:
        if value == 1:
            raise ValueError("sip_order is 0 (TAN) or at least 2 (TAN-SIP)")
        return value


class Recipe(BaseModel):
    """One step of the cascade."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    kind: str  # which classified frames it takes
    raw_tag: str  # SOF tag of its raw frames
    product_tag: str  # PRO.CATG of its product
    group_by: tuple[str, ...]
    min_frames: int = Field(1, ge=1)
    one_per_frame: bool = False
    needs: tuple[CalibrationNeed, ...] = ()
    # calibrations of this recipe older (or younger) than this many days are never matched
    max_age_days: float | None = Field(default=None, gt=0)
    # a plug-in recipe: "package.module:function"; without it, the built-in of this name or
    # a function registered under it in the `astroflow.recipes` entry-point group
    function: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    # reduce: find cosmic rays (MASK bit 8, QC metric cosmic_rays); absent: none are looked for
    cosmic_rays: CosmicRays | None = None
    # masters: how their frames are combined
    combine: Combine = Combine()
    # reduce: image-quality QC with sep (sources, FWHM, ellipticity, sky noise); false: none
    image_quality: bool = True
    # reduce: a static bad-pixel mask of the instrument (FITS, nonzero = bad; relative to the
    # rules file), OR'ed into every reduced frame's MASK as bit 16
    bad_pixels: str | None = None
    # mbpm: how the bad-pixel mask is derived from its flats (and the master dark)
    bad_pixel_mask: BadPixelMask = BadPixelMask()
    # reduce: the astrometric solution (astrometry.net) that replaces the header's WCS
    solve: Solve = Solve()

    @field_validator("group_by")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if key not in GROUP_KEYS:
                raise ValueError(f"unknown group key {key!r} (known: {', '.join(GROUP_KEYS)})")
        return value


class RuleSet(BaseModel):
    """A whole ruleset: keywords, classifiers and recipes (in cascade order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    keywords: dict[str, str]
    required: tuple[str, ...] = ("imagetyp", "exptime")
    classify: tuple[Classifier, ...]
    recipes: tuple[Recipe, ...]
    exptime_decimals: int = 2
    # which frames these rules are for: header values that must all match (by token, case
    # insensitive: INSTRUME, TELESCOP...); empty: every frame
    instrument: dict[str, tuple[str, ...]] = {}
    detector: Detector | None = None
    site: Site = Site()
    # Header keywords that mark a reduced product, never a raw frame (astroflow's own AF_RECIP
    # always; e.g. ESO's "ESO PRO CATG"): such files go to misc/ with the reason.
    product_keywords: tuple[str, ...] = ("AF_RECIP",)

    @field_validator("instrument")
    @classmethod
    def _lower(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {
            k.strip().upper(): tuple(v.strip().lower() for v in vals) for k, vals in value.items()
        }

    def claims(self, header: Mapping[str, object]) -> bool:
        """Whether these rules are for a frame with this header (every ``instrument`` entry
        matches one of its values, by token)."""
        return all(
            matches(header.get(keyword), allowed) for keyword, allowed in self.instrument.items()
        )

    @field_validator("keywords")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in FIELDS:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        names = [r.name for r in self.recipes]
        if len(set(names)) != len(names):
            raise ValueError(f"recipe names repeat: {names}")
        for i, recipe in enumerate(self.recipes):
            for need in recipe.needs:
                if need.recipe not in names[:i]:
                    raise ValueError(
                        f"recipe {recipe.name!r} needs {need.recipe!r}, which is not an earlier "
                        "recipe"
                    )
        kinds = {c.kind for c in self.classify}
        for recipe in self.recipes:
            if recipe.kind not in kinds:
                raise ValueError(
                    f"recipe {recipe.name!r} takes kind {recipe.kind!r}, "
                    "which no classifier produces"
                )
        for key in self.required:
            if key not in self.keywords and key not in ("mjd_obs",):
                raise ValueError(f"required field {key!r} has no keyword")
        if "mjd_obs" not in self.keywords and "date_obs" not in self.keywords:
            raise ValueError("keywords need mjd_obs or date_obs")
        return self

    def recipe(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise KeyError(name)


def tokens(value: object) -> tuple[str, ...]:
    """A header value as the lower-case tokens a convention may list in it: the whole value,
    then its comma-separated parts (ESO ``DPR TECH = 'IMAGE,JITTER'``)."""
    if value is None:
        return ()
    text = f"{value:g}" if isinstance(value, float) else str(value)
    text = text.strip().lower()
    parts = tuple(p.strip() for p in text.split(",") if p.strip()) if "," in text else ()
    return (text, *parts)


def matches(value: object, allowed: tuple[str, ...]) -> bool:
    """Whether a header value, or one of its tokens, is among ``allowed`` (lower case)."""
    return any(t in allowed for t in tokens(value))


RULESETS_DIR = Path(__file__).with_name("rulesets")
DEFAULT_RULESET = "generic-ccd"


def load_rules(name_or_path: str | Path = DEFAULT_RULESET) -> RuleSet:
    """Load a ruleset by shipped name (``generic-ccd``, ``eso-imager``) or file path.

    Raises
    ------
    ConfigError
        Naming the file, the entry and the key for any problem.
    """
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = RULESETS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in RULESETS_DIR.glob("*.yaml")))
        raise ConfigError(f"ruleset {str(name_or_path)!r} not found (shipped: {shipped})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = []
            if len(loc) >= 2 and loc[0] in ("recipes", "classify") and isinstance(loc[1], int):
                items = data.get(loc[0]) or []
                entry = items[loc[1]] if loc[1] < len(items) else {}
                label = entry.get("name") or entry.get("kind") if isinstance(entry, dict) else None
                where.append(f"{loc[0]}[{loc[1]}]" + (f" ({label})" if label else ""))
                loc = loc[2:]
            key = ".".join(str(p) for p in loc)
            problems.append(f"{' '.join(where)} {key}: {err['msg']}".strip())
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    # files the rules name are relative to the rules file
    recipes = tuple(
        r.model_copy(update={"bad_pixels": str((path.parent / r.bad_pixels).resolve())})
        if r.bad_pixels
        else r
        for r in rules.recipes
    )
    return rules.model_copy(update={"recipes": recipes})


class RuleBook(BaseModel):
    """The rules a session uses: one or more rulesets (instrument definitions) active at
    once. A frame is classified by the first ruleset that claims it (:meth:`RuleSet.claims`);
    its sets, products and cascade follow that ruleset's recipes."""

    model_config = ConfigDict(frozen=True)

    rulesets: tuple[RuleSet, ...]

    @model_validator(mode="after")
    def _distinct(self) -> RuleBook:
        names = [r.name for r in self.rulesets]
        if not names:
            raise ValueError("no ruleset")
        if len(set(names)) != len(names):
            raise ValueError(f"ruleset names repeat: {names}")
        return self

    @property
    def name(self) -> str:
        return ",".join(r.name for r in self.rulesets)

    def claiming(self, header: Mapping[str, object]) -> RuleSet | None:
        """The first ruleset that claims a frame with this header, or None."""
        for rules in self.rulesets:
            if rules.claims(header):
                return rules
        return None

    def named(self, name: str) -> RuleSet:
        """The ruleset of this name (the first one for ``""``: frames classified before
        rulesets were recorded)."""
        for rules in self.rulesets:
            if rules.name == name:
                return rules
        if not name:
            return self.rulesets[0]
        raise KeyError(name)


def as_book(rules: RuleSet | RuleBook) -> RuleBook:
    """A ruleset as a book of one; a book as it is."""
    return rules if isinstance(rules, RuleBook) else RuleBook(rulesets=(rules,))


def load_rulebook(spec: str | Path = DEFAULT_RULESET) -> RuleBook:
    """The rulesets named (shipped names or paths) in ``spec``, separated by commas
    (``saao-ste3,hst-wfpc2``), in the order a frame is offered to them.

    Raises
    ------
    ConfigError
        For a ruleset that does not load, or two of one name.
    """
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    try:
        return RuleBook(rulesets=tuple(load_rules(p) for p in parts or [DEFAULT_RULESET]))
    except ValidationError as exc:
        raise ConfigError(f"rules {str(spec)!r}: {exc.errors()[0]['msg']}") from None


Status = Literal["pass", "fail"]
