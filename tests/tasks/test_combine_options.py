"""The combine options of a master recipe (``combine:`` in the rules) give what
``ccdproc.Combiner`` gives for the same options, band by band within a memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.stats import mad_std
from ccdproc import Combiner

from astroflow.models.rules import Combine
from astroflow.tasks.cascade_work import combine

OPTIONS = {
    "median": Combine(method="median", sigma=None),
    "scaled-mean": Combine(scale="median", sigma=None),
    "weighted-mean": Combine(weights="variance", sigma=None),
    "scaled-median": Combine(method="median", scale="median", sigma=None),
    "clipped-median": Combine(method="median", sigma=3.0, maxiters=1),
}


@pytest.mark.parametrize("name", list(OPTIONS), ids=list(OPTIONS))
def test_equals_ccdproc_combiner(rng: np.random.Generator, name: str) -> None:
    options = OPTIONS[name]
    frames = [
        rng.normal(1000.0 * (1 + 0.2 * i), 5.0 * (1 + i), (60, 70)).astype(np.float32)
        for i in range(5)
    ]
    frames[2][10, 10] = 1e5  # a hit for the clipping
    ours = combine(frames, (60, 70), options=options, budget_bytes=20_000)  # several bands
    combiner = Combiner([CCDData(f.astype(np.float64), unit="adu") for f in frames])
    if options.scale == "median":
        combiner.scaling = [1.0 / np.ma.median(f.astype(np.float64)) for f in frames]
    if options.weights == "variance":
        per_frame = np.array([1.0 / mad_std(f.astype(np.float64)) ** 2 for f in frames])
        combiner.weights = np.broadcast_to(per_frame[:, None, None], (5, 60, 70)).copy()
    if options.sigma is not None:
        combiner.sigma_clipping(
            low_thresh=options.sigma, high_thresh=options.sigma, func=np.ma.median, dev_func=mad_std
        )
    reference = (
        combiner.median_combine() if options.method == "median" else combiner.average_combine()
    )
    np.testing.assert_allclose(ours, reference.data, rtol=1e-6)


def test_the_default_is_the_clipped_mean_kernel(rng: np.random.Generator) -> None:
    from astropy.stats import sigma_clip

    frames = [rng.normal(500.0, 10.0, (30, 40)).astype(np.float32) for _ in range(6)]
    ours = combine(frames, (30, 40), options=Combine())
    clipped = sigma_clip(
        np.stack(frames), sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std", axis=0
    )
    np.testing.assert_allclose(ours, clipped.mean(axis=0).filled(np.nan), rtol=1e-5)


def test_the_rules_name_the_options(tmp_path) -> None:
    import yaml

    from astroflow.models.rules import RULESETS_DIR, load_rules

    data = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    for recipe in data["recipes"]:
        if recipe["name"] == "mflat":
            recipe["combine"] = {"method": "median", "scale": "median", "sigma": None}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data))
    recipes = {r.name: r for r in load_rules(path).recipes}
    assert recipes["mflat"].combine == Combine(method="median", scale="median", sigma=None)
    assert recipes["mbias"].combine.default
