"""Plug-ins from another package: an image source, a repository backend and a recipe with
its own QC metric, registered only through entry points, run end to end in real flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.flows.cascade import calibration_cascade
from astroflow.flows.ingest import ingest_images
from astroflow.flows.organiser import prepare_workspace
from astroflow.models.errors import ConfigError
from tests.flows.test_cascade import SHAPE, SKYFLAT, _product, _rules_with
from tests.imagedata import tan_wcs, write_fits
from tests.organiser_data import make_workspace
from tests.plugins.install import plugins_installed

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture
def plugins(tmp_path: Path) -> object:
    with plugins_installed(tmp_path / "site"):
        yield


def test_a_plugin_source_and_backend_ingest_end_to_end(
    tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.plugins.vault import VaultRepository

    rng = np.random.default_rng(5)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("Alpha", "Beta"):
        write_fits(images / f"{name}.fits", 300, 200, rng, tan_wcs(300, 200))
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{images / n}.fits\n" for n in ("Alpha", "Beta")))
    vault = tmp_path / "vault"
    (vault / "wwt").mkdir(parents=True)
    (vault / "wwt" / "toasty-pipeline-config.yaml").write_text(
        "source_type: listing\npublish_url_prefix: https://x.org/\nfolder_name: Plug-ins\n"
        f"listing:\n  list_file: {listing}\n"
    )
    monkeypatch.setenv("MY_VAULT", str(vault))
    stages = ingest_images("vault://wwt", str(tmp_path / "work"), azure_conn_env="MY_VAULT")
    assert stages[2].done == ("alpha", "beta")
    assert sorted(p.parent.name for p in (vault / "wwt").glob("*/index.wtml")) == [
        "alpha",
        "beta",
    ]
    assert "alpha" in (vault / "wwt" / "index.wtml").read_text()
    assert "vault://wwt" in VaultRepository.opened


def test_an_unregistered_source_type_is_refused_naming_the_registered(
    tmp_path: Path, plugins: object
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "toasty-pipeline-config.yaml").write_text(
        "source_type: nowhere\npublish_url_prefix: x\nfolder_name: y\nnowhere: {}\n"
    )
    with pytest.raises(ConfigError, match=r"'nowhere' is not registered.*listing"):
        ingest_images(str(repo), str(tmp_path / "work"))


@pytest.mark.parametrize(
    ("qc_range", "verdict"), [("[0.9, 1.1]", "PASS"), ("[2, 3]", "FAIL")], ids=["pass", "fail"]
)
def test_a_plugin_recipe_declares_a_metric_a_session_can_range(
    tmp_path: Path, plugins: object, qc_range: str, verdict: str
) -> None:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    # no ``function:``: the recipe is found by its name in the astroflow.recipes group
    lines = SKYFLAT.format(function="-").splitlines()
    extra = "\n".join(line for line in lines if "function:" not in line) + "\n"
    prepare_workspace(str(ws), rules=str(_rules_with(tmp_path, extra)))
    qc_file = ws / "sessions" / "base" / "settings" / "qc.yaml"
    qc_file.write_text(f"skyflat:\n  median: {qc_range}\n")
    summary = calibration_cascade(str(ws))
    sky = sorted(n for n in (*summary.made, *summary.failed) if "SKYFLAT" in n)
    assert sky, summary
    header = fits.getheader(_product(ws, sky[0]))
    assert header["AF_RECIP"] == "skyflat"
    assert header["AF_QC"] == verdict
    assert (sky[0] in summary.failed) == (verdict == "FAIL")
