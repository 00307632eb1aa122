"""AVM tags read as a WWT engineer needs them: tags pyavm refuses are left out and named,
the spatial ones still place the picture; broken spatial tags reject it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pyavm import AVM

from astroflow.models.errors import WcsError
from astroflow.storage.ingest.avm import has_avm, read_avm
from tests.imagedata import tan_wcs, write_avm_jpeg

NOTES = (
    "<avm:Spatial.Notes><rdf:Alt><rdf:li xml:lang='x-default'>Registered by hand</rdf:li>"
    "<rdf:li xml:lang='de'>Von Hand registriert</rdf:li></rdf:Alt></avm:Spatial.Notes>"
)
ODD_TITLE = (  # fine for both
    "<dc:title xmlns:dc='http://purl.org/dc/elements/1.1/'><rdf:Alt><rdf:li>a</rdf:li>"
    "</rdf:Alt></dc:title>"
)
ODD_SHAPE = "<avm:Subject.Name><avm:Inner>x</avm:Inner></avm:Subject.Name>"
CREDIT = (
    "<photoshop:Credit xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/'>x</photoshop:Credit>"
)


@pytest.mark.parametrize(
    ("extra", "ignored"),
    [(NOTES, "Spatial.Notes"), (ODD_SHAPE, "Subject.Name"), (ODD_TITLE + CREDIT, None)],
    ids=["notes-list", "odd-structure", "tolerated"],
)
def test_refused_text_tags_are_left_out_and_the_picture_placed(
    tmp_path: Path, rng: np.random.Generator, extra: str, ignored: str | None
) -> None:
    wcs = tan_wcs(320, 240, rotation_deg=20.0)
    clean, noisy = tmp_path / "clean.jpg", tmp_path / "noisy.jpg"
    write_avm_jpeg(clean, 320, 240, rng, wcs)
    write_avm_jpeg(noisy, 320, 240, rng, wcs, extra_xml=extra)
    if ignored == "Spatial.Notes":  # what pyavm 0.9.9 says of such a press image
        with pytest.raises(TypeError, match=r"Spatial\.Notes is not a string"):
            AVM.from_image(str(noisy))
    got = read_avm(noisy, 320, 240, "https://x.org/noisy.jpg")
    assert got is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Spatial.Equinox is not present, assuming 2000"
        reference = AVM.from_image(str(clean)).to_wcs(target_shape=(320, 240))
    np.testing.assert_allclose(got.wcs.wcs.crval, reference.wcs.crval)
    np.testing.assert_allclose(got.wcs.pixel_scale_matrix, reference.pixel_scale_matrix)
    np.testing.assert_allclose(got.wcs.wcs.crpix, reference.wcs.crpix)
    if ignored is None:
        assert got.ignored == ()
    else:
        assert [i.split(":")[0] for i in got.ignored] == [ignored]


BROKEN = {
    "three-values": (
        "<avm:Spatial.Scale><rdf:Seq><rdf:li>1</rdf:li><rdf:li>2</rdf:li><rdf:li>3</rdf:li>"
        "</rdf:Seq></avm:Spatial.Scale>",
        ("Spatial.Scale",),
        "Spatial.Scale",
    ),
    "not-a-number": (
        "<avm:Spatial.Rotation>north-ish</avm:Spatial.Rotation>",
        ("Spatial.Rotation",),
        "Spatial.Rotation",
    ),
}


@pytest.mark.parametrize(("extra", "drop", "named"), BROKEN.values(), ids=BROKEN.keys())
def test_unreadable_spatial_tag_rejects_the_picture(
    tmp_path: Path, rng: np.random.Generator, extra: str, drop: tuple[str, ...], named: str
) -> None:
    path = tmp_path / "bad.jpg"
    write_avm_jpeg(path, 320, 240, rng, tan_wcs(320, 240), extra_xml=extra, drop=drop)
    with pytest.raises(WcsError, match=named) as info:
        read_avm(path, 320, 240, "https://x.org/bad.jpg")
    assert "https://x.org/bad.jpg" in str(info.value)


def test_untagged_picture_has_no_avm(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "plain.jpg"
    write_avm_jpeg(path, 64, 48, rng, None)
    assert read_avm(path, 64, 48, "plain") is None
    assert not has_avm(path)
    tagged = tmp_path / "tagged.jpg"
    write_avm_jpeg(tagged, 64, 48, rng, tan_wcs(64, 48))
    assert has_avm(tagged)
