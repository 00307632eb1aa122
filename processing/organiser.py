"""The organiser's science: classify frames by rules, group them into recipe sets, predict
products and match calibrations. Pure functions over header mappings; no I/O.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from astroflow.models.errors import ProcessingError
from astroflow.models.organiser import FrameInfo, ProductPlan, SetPlan, SofLine, SofPlan
from astroflow.models.rules import CalibrationNeed, RuleBook, RuleSet, as_book, matches

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
NIGHT_OFFSET_DAYS = 15.0 / 24.0  # night = date of (MJD-OBS - 15 h)
MAX_NAME = 60  # product names stay well inside a FITS string value (68 chars)


_OLD_FITS_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")


def mjd_from_isot(text: str, time: str | None = None) -> float:
    """MJD (UTC days) from a DATE-OBS: ISO 8601 (``2026-01-10T21:03:04.5``) or the pre-2000
    FITS form ``DD/MM/YY`` (1900-1999, as the 1997 IAU FITS agreement reads it); ``time``
    (a TIME-OBS or UT card, ``HH:MM:SS[.s]``) completes a date without one."""
    value = text.strip().replace("Z", "")
    old = _OLD_FITS_DATE.match(value)
    if old is not None:
        day, month, year = old.groups()
        value = f"19{year}-{month}-{day}"
    if time and "T" not in value:
        value = f"{value}T{time.strip()}"
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ProcessingError(f"DATE-OBS {text!r} is not an ISO 8601 date") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (stamp - MJD_EPOCH) / timedelta(days=1)


def night_of(mjd: float, longitude: float | None = None) -> str:
    """The night a frame belongs to (ISO date of its evening).

    At a site of known ``longitude`` (degrees east) a night runs from local noon to local
    noon (mean solar time): the date of ``MJD + longitude / 360 - 12 h``. Without one, the
    date of ``MJD - 15 h`` (local noon at longitude -45).
    """
    offset = NIGHT_OFFSET_DAYS if longitude is None else 0.5 - longitude / 360.0
    return (MJD_EPOCH + timedelta(days=mjd - offset)).date().isoformat()


def parse_longitude(value: Any) -> float | None:
    """Degrees east in (-180, 180] from a header value: a number or a sexagesimal string
    (``'-96:27:11.8008'``, ``'+149 03 42'``); None when it is neither."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        degrees = float(value)
    else:
        text = str(value).strip()
        parts = re.split(r"[:\s]+", text)
        try:
            numbers = [float(p) for p in parts if p]
        except ValueError:
            return None
        if not numbers or len(numbers) > 3:
            return None
        sign = -1.0 if text.startswith("-") else 1.0
        degrees = sign * sum(abs(n) / 60**i for i, n in enumerate(numbers))
    if not math.isfinite(degrees):
        return None
    degrees = math.fmod(degrees, 360.0)
    if degrees > 180.0:
        degrees -= 360.0
    elif degrees <= -180.0:
        degrees += 360.0
    return degrees


def site_longitude(
    header: Mapping[str, Any], rules: RuleSet, default: float | None = None
) -> float | None:
    """The site's longitude for a frame: the rules', else its header's (the rules'
    ``longitude_keywords``, then ``OBSGEO-X/Y``), else ``default`` (a setting)."""
    if rules.site.longitude is not None:
        return parse_longitude(rules.site.longitude)
    for keyword in rules.site.longitude_keywords:
        found = parse_longitude(header.get(keyword))
        if found is not None:
            return found
    try:
        x, y = float(header["OBSGEO-X"]), float(header["OBSGEO-Y"])
    except (KeyError, TypeError, ValueError):
        return default
    if x == 0 and y == 0:
        return default
    return math.degrees(math.atan2(y, x))


def header_keywords(rules: RuleSet | RuleBook) -> frozenset[str]:
    """Every header keyword classifying a frame under ``rules`` (each ruleset of a book)
    reads."""
    out: frozenset[str] = frozenset({"OBSGEO-X", "OBSGEO-Y"})
    for rs in as_book(rules).rulesets:
        out |= (
            frozenset(rs.keywords.values())
            | frozenset(rs.product_keywords)
            | frozenset(rs.instrument)
            | frozenset(rs.site.longitude_keywords)
        )
    return out


def classify(
    file: str,
    header: Mapping[str, Any],
    rules: RuleSet | RuleBook,
    default_longitude: float | None = None,
) -> FrameInfo:
    """Classify one raw frame with the first ruleset of ``rules`` that claims it.

    Raises
    ------
    ProcessingError
        When no ruleset claims it (naming them and the header values they look for), or as
        :func:`frame_info`.
    """
    book = as_book(rules)
    chosen = book.claiming(header)
    if chosen is None and len(book.rulesets) == 1:
        chosen = book.rulesets[0]  # frame_info says why it is not for these rules
    if chosen is None:
        looked = sorted({k for rs in book.rulesets for k in rs.instrument})
        shown = ", ".join(f"{k}={_text(header.get(k))!r}" for k in looked)
        raise ProcessingError(f"{file}: no rules claim it (rules {book.name}; {shown})")
    return frame_info(file, header, chosen, default_longitude)


def plan_book(
    frames: Iterable[FrameInfo], rules: RuleSet | RuleBook
) -> tuple[list[SetPlan], list[ProductPlan]]:
    """:func:`plan_sets` for each ruleset of a book, on the frames it classified."""
    book = as_book(rules)
    by_rules: dict[str, list[FrameInfo]] = defaultdict(list)
    for frame in frames:
        by_rules[book.named(frame.rules).name].append(frame)
    sets: list[SetPlan] = []
    products: list[ProductPlan] = []
    for rs in book.rulesets:
        s, p = plan_sets(by_rules.get(rs.name, []), rs)
        sets += s
        products += p
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ProcessingError(f"product names collide across rulesets: {dupes[:5]}")
    return sets, products


def match_book(
    sets: list[SetPlan],
    products: list[ProductPlan],
    rules: RuleSet | RuleBook,
    frame_rules: Mapping[str, str],
    statuses: Mapping[str, str] | None = None,
    session_root: str = "",
) -> list[SofPlan]:
    """:func:`match_calibrations` for each ruleset of a book: its sets (those of its frames,
    ``frame_rules`` mapping a frame path to its ruleset) matched with its products; each SOF
    says its ruleset."""
    book = as_book(rules)
    sofs: list[SofPlan] = []
    for rs in book.rulesets:
        mine = [
            s
            for s in sets
            if book.named(frame_rules.get(s.frames[0], "") if s.frames else "").name == rs.name
        ]
        names = {s.name for s in mine}
        found = match_calibrations(
            mine, [p for p in products if p.set_name in names], rs, statuses, session_root
        )
        sofs += [s.model_copy(update={"rules": rs.name}) for s in found]
    return sofs


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def frame_info(
    file: str,
    header: Mapping[str, Any],
    rules: RuleSet,
    default_longitude: float | None = None,
) -> FrameInfo:
    """Classify one raw frame from its header.

    Parameters
    ----------
    default_longitude
        The site longitude (degrees east) when neither the rules nor the header give one.

    Raises
    ------
    ProcessingError
        For a frame the rules are not for, a missing required keyword, an unparseable value,
        or a type no rule matches.
    """
    if not rules.claims(header):
        shown = ", ".join(f"{k}={_text(header.get(k))!r}" for k in rules.instrument)
        raise ProcessingError(
            f"{file}: no rules claim it ({rules.name} is for another instrument: {shown})"
        )
    for keyword in rules.product_keywords:
        if header.get(keyword) not in (None, ""):
            raise ProcessingError(
                f"{file}: a reduced product ({keyword}={header[keyword]!r}), not a raw frame"
            )
    kw = rules.keywords
    values: dict[str, Any] = {}
    for field, keyword in kw.items():
        value = header.get(keyword)
        if value is None or (isinstance(value, str) and not value.strip()):
            if field in rules.required:
                raise ProcessingError(f"{file}: missing required keyword {keyword}")
            continue
        values[field] = value
    if "date_obs" in values and "time_obs" in values:
        # a date and a time of day win over an MJD-OBS that some cameras round to the day
        mjd = mjd_from_isot(str(values["date_obs"]), str(values["time_obs"]))
    elif "mjd_obs" in values:
        try:
            mjd = float(values["mjd_obs"])
        except (TypeError, ValueError):
            raise ProcessingError(f"{file}: {kw['mjd_obs']} is not a number") from None
    elif "date_obs" in values:
        mjd = mjd_from_isot(str(values["date_obs"]))
    else:
        raise ProcessingError(
            f"{file}: missing {kw.get('mjd_obs', 'MJD-OBS')} and {kw.get('date_obs', 'DATE-OBS')}"
        )
    try:
        exptime = round(float(values["exptime"]), rules.exptime_decimals)
    except (TypeError, ValueError, KeyError):
        raise ProcessingError(f"{file}: {kw.get('exptime')} is not a number") from None
    if not (math.isfinite(mjd) and math.isfinite(exptime) and exptime >= 0):
        raise ProcessingError(f"{file}: MJD {mjd} or exposure time {exptime} is not valid")
    kind = None
    for rule in rules.classify:
        if all(matches(values.get(f), allowed) for f, allowed in rule.match.items()):
            kind = rule.kind
            break
    if kind is None:
        shown = ", ".join(f"{kw[f]}={_text(values.get(f))!r}" for f in rules.classify[0].match)
        raise ProcessingError(f"{file}: frame type ({shown}) matches no rule")
    try:
        xb = int(float(values.get("xbinning", 1)))
        yb = int(float(values.get("ybinning", xb)))
    except (TypeError, ValueError):
        raise ProcessingError(f"{file}: binning is not a number") from None
    return FrameInfo(
        file=file,
        kind=kind,
        instrument=_text(values.get("instrument")),
        binning=f"{xb}x{yb}",
        readout=_text(values.get("readout")),
        gain=_text(values.get("gain")),
        filter=_text(values.get("filter")),
        exptime=exptime,
        mjd_obs=mjd,
        night=night_of(mjd, site_longitude(header, rules, default_longitude)),
        object=_text(values.get("object")),
        rules=rules.name,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "", text.replace(" ", "-"))[:16]


def _name(recipe: str, night: str, keys: dict[str, str], one: str | None) -> str:
    if one is not None:  # per-frame product: the raw file's stem
        stem = re.sub(r"\.(fits|fit|fts)$", "", one, flags=re.IGNORECASE)
        return f"{stem[: MAX_NAME - 4]}_RED"
    parts = [night.replace("-", ""), recipe.upper(), keys.get("binning", "")]
    if "exptime" in keys:
        parts.append(f"{keys['exptime']}s")
    if keys.get("filter"):
        parts.append(_slug(keys["filter"]))
    digest = hashlib.sha1(repr(sorted(keys.items())).encode()).hexdigest()[:6]
    name = "_".join(p for p in parts if p)
    return f"{name[: MAX_NAME - 7]}_{digest}"


def plan_sets(
    frames: Iterable[FrameInfo], rules: RuleSet
) -> tuple[list[SetPlan], list[ProductPlan]]:
    """Group frames into recipe sets and predict each set's product, deterministically."""
    by_kind: dict[str, list[FrameInfo]] = defaultdict(list)
    for frame in sorted(frames, key=lambda f: (f.mjd_obs, f.file)):
        by_kind[frame.kind].append(frame)
    sets: list[SetPlan] = []
    products: list[ProductPlan] = []
    for order, recipe in enumerate(rules.recipes):
        groups: dict[tuple[str, ...], list[FrameInfo]] = defaultdict(list)
        for frame in by_kind.get(recipe.kind, []):
            key = tuple(frame.key(k) for k in recipe.group_by)
            if recipe.one_per_frame:
                key = (*key, frame.file)
            groups[key].append(frame)
        for key, members in sorted(groups.items()):
            keys = dict(zip(recipe.group_by, key, strict=False))
            night = keys.get("night") or members[0].night
            one = members[0].file if recipe.one_per_frame else None
            name = _name(recipe.name, night, keys, one)
            complete = len(members) >= recipe.min_frames
            reason = (
                ""
                if complete
                else (
                    f"only {len(members)} {recipe.kind} frame(s); {recipe.name} needs "
                    f"{recipe.min_frames}"
                )
            )
            mjd = sum(f.mjd_obs for f in members) / len(members)
            exptime = round(sum(f.exptime for f in members) / len(members), 4)
            sorted_keys = tuple(sorted(keys.items()))
            sets.append(
                SetPlan(
                    name=name,
                    recipe=recipe.name,
                    recipe_order=order,
                    night=night,
                    keys=sorted_keys,
                    frames=tuple(sorted(f.path for f in members)),
                    mjd=mjd,
                    exptime=exptime,
                    complete=complete,
                    reason=reason,
                )
            )
            products.append(
                ProductPlan(
                    name=name,
                    set_name=name,
                    recipe=recipe.name,
                    recipe_order=order,
                    tag=recipe.product_tag,
                    filepath=f"reduced/{night}/{recipe.name}/{name}.fits",
                    night=night,
                    mjd=mjd,
                    exptime=exptime,
                    keys=sorted_keys,
                    complete=complete,
                )
            )
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ProcessingError(f"product names collide: {dupes[:5]}")
    return sets, products


def _rank(need: CalibrationNeed, target: SetPlan, product: ProductPlan) -> tuple[float, float, str]:
    dexp = abs(product.exptime - target.exptime) if need.rank_by_exptime else 0.0
    return (round(dexp, 6), round(abs(product.mjd - target.mjd), 9), product.name)


def _nearest(
    need: CalibrationNeed,
    target: SetPlan,
    candidates: list[ProductPlan],
    cache: dict[tuple, dict[float, tuple[list[float], list[ProductPlan]]]],
    index: tuple,
) -> ProductPlan:
    """The best candidate by :func:`_rank`, found by bisection on MJD within the exposure
    times closest to the target's (the same result as ``min(candidates, key=_rank)``)."""
    import bisect

    if len(candidates) <= 8:
        return min(candidates, key=lambda p: _rank(need, target, p))
    groups = cache.get(index)
    if groups is None:
        by_exp: dict[float, list[ProductPlan]] = defaultdict(list)
        for p in candidates:
            by_exp[p.exptime if need.rank_by_exptime else 0.0].append(p)
        groups = {}
        for exp, items in by_exp.items():
            items.sort(key=lambda p: (p.mjd, p.name))
            groups[exp] = ([p.mjd for p in items], items)
        cache[index] = groups
    if need.rank_by_exptime:
        best_d = min(round(abs(e - target.exptime), 6) for e in groups)
        exps = [e for e in groups if round(abs(e - target.exptime), 6) == best_d]
    else:
        exps = list(groups)
    shortlist: list[ProductPlan] = []
    for exp in exps:
        mjds, items = groups[exp]
        i = bisect.bisect_left(mjds, target.mjd)
        lo, hi = max(0, i - 2), min(len(items), i + 2)
        while lo > 0 and mjds[lo - 1] == mjds[lo]:
            lo -= 1
        while hi < len(items) and mjds[hi] == mjds[hi - 1]:
            hi += 1
        shortlist.extend(items[lo:hi])
    return min(shortlist, key=lambda p: _rank(need, target, p))


def match_calibrations(
    sets: list[SetPlan],
    products: list[ProductPlan],
    rules: RuleSet,
    statuses: Mapping[str, str] | None = None,
    session_root: str = "",
) -> list[SofPlan]:
    """The SOF of every set for one session.

    A calibration candidate is a product of the needed recipe whose ``match`` keys equal the
    set's and that is usable in this session: its own SOF is complete and its status is not
    ``fail``. Candidates rank by |delta exptime| (when the rules say so), then |delta MJD|, then
    name (deterministic ties). A set with no candidate is incomplete, with the reason.
    """
    statuses = statuses or {}
    prefix = f"{session_root.rstrip('/')}/" if session_root else ""
    # usable[(recipe, match keys, match values)] -> products, kept in cascade order
    usable: dict[tuple, list[ProductPlan]] = defaultdict(list)
    failed_usable: dict[tuple, list[ProductPlan]] = defaultdict(list)
    by_set = {p.set_name: p for p in products}
    keys_of = {p.name: dict(p.keys) | {"exptime": f"{p.exptime:g}"} for p in products}
    needs_by_recipe: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for recipe in rules.recipes:
        for need in recipe.needs:
            needs_by_recipe[need.recipe].add(tuple(need.match))
    sofs: list[SofPlan] = []
    sorted_cache: dict[tuple, dict[float, tuple[list[float], list[ProductPlan]]]] = {}
    for target in sorted(sets, key=lambda s: (s.recipe_order, s.name)):
        recipe = rules.recipe(target.recipe)
        target_keys = dict(target.keys)
        lines = [SofLine(path=path, tag=recipe.raw_tag) for path in target.frames]
        reasons = [] if target.complete else [target.reason]
        used: list[str] = []
        substitutions: list[str] = []
        skipped: list[str] = []
        for need in recipe.needs:
            index = (
                need.recipe,
                tuple(need.match),
                tuple(target_keys.get(k, "") for k in need.match),
            )
            candidates = usable.get(index, [])
            max_age = rules.recipe(need.recipe).max_age_days
            aged: list[ProductPlan] = []
            if max_age is not None and candidates:
                aged = [p for p in candidates if abs(p.mjd - target.mjd) > max_age]
                if aged:
                    candidates = [p for p in candidates if abs(p.mjd - target.mjd) <= max_age]
                    aged.sort(key=lambda p: abs(p.mjd - target.mjd))
                    skipped += [
                        f"{p.name}: {abs(p.mjd - target.mjd):.1f} d apart, more than "
                        f"{need.recipe}'s max_age_days {max_age:g}"
                        for p in aged[:3]
                    ]
            if not candidates and need.optional:
                skipped.append(f"no {need.tag} matches (optional: left out)")
                continue
            if not candidates:
                # the keys the set has (an empty readout or gain says nothing)
                wanted = ", ".join(
                    f"{k}={target.key(k)}" for k in need.match if target.key(k) not in ("", None)
                )
                # only the candidates that matched this set, nearest first
                failed = sorted(failed_usable.get(index, []), key=lambda p: _rank(need, target, p))
                extra = f" (failed: {', '.join(p.name for p in failed[:3])})" if failed else ""
                old = " (older ones skipped: see SKIPPED)" if skipped else ""
                reasons.append(f"no {need.tag} with {wanted}{extra}{old}")
                continue
            if aged:  # a filtered list: the cache of the whole one does not apply
                best = min(candidates, key=lambda p: _rank(need, target, p))
            else:
                best = _nearest(need, target, candidates, sorted_cache, index)
            failed_better = [
                p
                for p in failed_usable.get(index, [])
                if _rank(need, target, p) < _rank(need, target, best)
                and (max_age is None or abs(p.mjd - target.mjd) <= max_age)
            ]
            if failed_better:
                ideal = min(failed_better, key=lambda p: _rank(need, target, p))
                substitutions.append(f"{best.name} replaces {ideal.name} (failed)")
            used.append(best.name)
            lines.append(SofLine(path=f"{prefix}{best.filepath}", tag=need.tag))
        complete = not reasons
        sofs.append(
            SofPlan(
                set_name=target.name,
                recipe=target.recipe,
                recipe_order=target.recipe_order,
                lines=tuple(lines),
                complete=complete,
                reason="; ".join(reasons),
                calibrations=tuple(used),
                substitutions=tuple(substitutions),
                skipped=tuple(skipped),
            )
        )
        product = by_set[target.name]
        if complete:
            pkeys = keys_of[product.name]
            into = failed_usable if statuses.get(product.name) == "fail" else usable
            for match in needs_by_recipe.get(target.recipe, ()):
                into[(target.recipe, match, tuple(pkeys.get(k, "") for k in match))].append(product)
    return sofs
