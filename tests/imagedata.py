"""Synthetic images with known WCS for the ingest tests (seeded, small)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS


def tan_wcs(
    width: int,
    height: int,
    *,
    rotation_deg: float = 0.0,
    scale_deg: float = 1e-4,
    crpix: tuple[float, float] | None = None,
    crval: tuple[float, float] = (83.82, -5.39),
    east_left: bool = True,
) -> WCS:
    """A TAN WCS in FITS convention (y from the bottom row).

    ``east_left`` is the usual sky orientation (CD determinant < 0); False gives a mirror
    image (determinant > 0).
    """
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix or ((width + 1) / 2 + 3.25, (height + 1) / 2 - 7.5))
    sx = -scale_deg if east_left else scale_deg
    t = math.radians(rotation_deg)
    w.wcs.cd = np.array(
        [
            [sx * math.cos(t), -scale_deg * math.sin(t) * (1 if east_left else -1)],
            [sx * math.sin(t) * (-1 if east_left else 1) * -1, scale_deg * math.cos(t)],
        ]
    )
    return w


def write_fits(
    path: Path, width: int, height: int, rng: np.random.Generator, wcs: WCS | None = None
) -> np.ndarray:
    data = rng.normal(100.0, 10.0, (height, width)).astype(np.float32)
    header = wcs.to_header() if wcs is not None else fits.Header()
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return data


def write_avm_jpeg(
    path: Path,
    width: int,
    height: int,
    rng: np.random.Generator,
    wcs: WCS | None,
    *,
    extra_xml: str = "",
    drop: tuple[str, ...] = (),
) -> np.ndarray:
    """A JPEG with AVM tags from ``wcs`` (FITS convention, as AVM is).

    ``extra_xml`` is written into the packet's ``rdf:Description`` as it is (tags as real
    press images carry them, which pyavm may refuse); ``drop`` names tags left out
    (``"Spatial.Scale"``).
    """
    from PIL import Image
    from pyavm import AVM

    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    plain = path.with_suffix(".plain.jpg")
    Image.fromarray(pixels).save(plain, "JPEG", quality=95)
    if wcs is None:
        plain.rename(path)
        return pixels
    avm = AVM.from_wcs(wcs, shape=(height, width))
    if not extra_xml and not drop:
        avm.embed(str(plain), str(path))
    else:
        import re

        from pyavm.embed import embed_xmp

        packet = avm.to_xmp().decode("utf-8")
        for tag in drop:
            packet = re.sub(rf"<avm:{re.escape(tag)}>.*?</avm:{re.escape(tag)}>", "", packet)
        packet = packet.replace("</rdf:Description>", extra_xml + "</rdf:Description>")
        embed_xmp(str(plain), str(path), packet.encode("utf-8"))
    plain.unlink()
    return pixels


def astropix_entry(image_id: str, url: str, **extra: object) -> dict:
    """An AstroPix feed entry of a 320x240 picture placed by its AVM-style WCS fields."""
    from pyavm import AVM

    avm = AVM.from_wcs(tan_wcs(320, 240, rotation_deg=5.0), shape=(240, 320))
    entry = {
        "publisher_id": "noao",
        "image_id": image_id,
        "title": f"Image {image_id}",
        "resource_url": url,
        "reference_url": f"https://example.org/{image_id}",
        "last_updated": "2024-05-01T10:00:00",
        "wcs_projection": "TAN",
        "wcs_reference_value": [float(v) for v in avm.Spatial.ReferenceValue],
        "wcs_reference_pixel": [float(v) for v in avm.Spatial.ReferencePixel],
        "wcs_reference_dimension": [320.0, 240.0],
        "wcs_scale": [float(v) for v in avm.Spatial.Scale],
        "wcs_rotation": float(avm.Spatial.Rotation),
    }
    entry.update(extra)
    return entry


def tile_values(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A tile's values (mean of its colour channels, or its FITS values in top-down rows)
    and where it has data (opaque, or finite)."""
    from PIL import Image

    if path.suffix == ".fits":
        values = fits.getdata(path).astype(np.float64)[::-1]  # FITS tiles: bottom row first
        return values, np.isfinite(values)
    pixels = np.asarray(Image.open(path).convert("RGBA")).astype(np.float64)
    return pixels[..., :3].mean(axis=2), pixels[..., 3] > 0


def tile_agreement(pairs: list[tuple[Path, Path]]) -> tuple[float, float, int]:
    """How two tilings of one image agree: the correlation of (ours, theirs) tile pairs over
    the pixels both have, the same with our rows reversed (a parity error shows as the
    reverse correlating better), and how many pairs had enough common pixels to count."""
    same_a, same_b, flip_a, flip_b = [], [], [], []
    count = 0
    for ours, theirs in pairs:
        assert ours.exists(), f"the peer has tile {theirs}; we have no {ours.name}"
        a, a_has = tile_values(ours)
        b, b_has = tile_values(theirs)
        both, flipped = a_has & b_has, a_has[::-1] & b_has
        if both.sum() < 100:
            continue
        count += 1
        same_a.append(a[both])
        same_b.append(b[both])
        flip_a.append(a[::-1][flipped])
        flip_b.append(b[flipped])
    if not count:
        return float("nan"), float("nan"), 0
    same = np.corrcoef(np.concatenate(same_a), np.concatenate(same_b))[0, 1]
    flip = np.corrcoef(np.concatenate(flip_a), np.concatenate(flip_b))[0, 1]
    return float(same), float(flip), count


def toasty_fits_study(image: Path, out: Path, name: str) -> Path:
    """toasty 0.20.1's tiled-FITS study of a FITS file as its own code makes it: the steps of
    ``toasty tile-study`` (``prepare_study_tiling``, ``ensure_negative_parity``,
    ``apply_wcs_info``, ``execute_study_tiling``), then ``Builder.cascade`` (the parents and
    the WTML's data range and cut), then ``index_rel.wtml``. Returns ``out``."""
    from toasty.builder import Builder
    from toasty.image import ImageLoader
    from toasty.pyramid import PyramidIO

    img = ImageLoader().load_path(str(image))
    builder = Builder(PyramidIO(str(out), default_format=img.default_format))
    tiling = builder.prepare_study_tiling(img)
    img.ensure_negative_parity()
    builder.apply_wcs_info(img.wcs, img.width, img.height)
    builder.make_placeholder_thumbnail()
    builder.execute_study_tiling(img, tiling)
    builder.cascade()
    builder.set_name(name)
    builder.write_index_rel_wtml()
    return out
