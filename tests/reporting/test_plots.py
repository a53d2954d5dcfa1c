"""The domain-adaptation figures of `transferkit.reporting.plots`, drawn from recorded settings."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from transferkit.reporting.plots import criterion_curves_png, domain_projection_png

PNG_MAGIC = b"\x89PNG"


def _image(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_MAGIC)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _share_of(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    """Share of pixels within a small distance of `colour` (the scatter points are semi-transparent)."""
    return float((np.abs(pixels - np.asarray(colour)).sum(-1) < 60).mean())


def test_projection_draws_source_and_target_in_their_own_colours_one_panel_per_view():
    rng = np.random.default_rng(0)
    view = {"source": rng.normal(0, 1, (200, 2)).tolist(), "target": rng.normal(3, 1, (200, 2)).tolist()}
    before = plt.get_fignums()
    two = _image(domain_projection_png([("before", view), ("after", view)]))
    one = _image(domain_projection_png([("before", view)]))
    assert plt.get_fignums() == before  # figures are closed after rendering
    assert one.shape[1] < 0.7 * two.shape[1]
    blue, orange = (31, 119, 180), (255, 127, 14)  # tab:blue, tab:orange
    # both domains are visible (faded by alpha, so compare with the blended colours against white)
    faded = lambda c: tuple(int(0.55 * v + 0.45 * 255) for v in c)  # noqa: E731
    assert _share_of(one, faded(blue)) > 0.002 and _share_of(one, faded(orange)) > 0.002
    only_source = _image(domain_projection_png([("before", {"source": view["source"], "target": []})]))
    assert _share_of(only_source, faded(orange)) < 0.0005 < _share_of(only_source, faded(blue))


def test_projection_and_curves_give_none_when_nothing_is_recorded():
    assert domain_projection_png([]) is None
    assert domain_projection_png([("before", {"source": [], "target": []}), ("after", {})]) is None
    assert criterion_curves_png({}, "val_dev_risk", "DEV risk", {}) is None
    assert criterion_curves_png({"dann": [{"epoch": 1, "val_dev_risk": None}]}, "val_dev_risk", "DEV risk",
                                {"dann": 1}) is None


def test_criterion_curves_draw_each_method_and_the_reference():
    curves = {m: [{"epoch": e, "val_dev_risk": 0.5 - 0.05 * e + 0.01 * i} for e in range(1, 6)]
              for i, m in enumerate(("none", "dann", "cdan"))}
    png = criterion_curves_png(curves, "val_dev_risk", "DEV risk", {"none": 5, "dann": 3, "cdan": 4}, kept="cdan",
                               reference=("source-only", 0.2))
    with_reference = _image(png)
    without = _image(criterion_curves_png(curves, "val_dev_risk", "DEV risk", {}, kept="cdan"))
    assert with_reference.shape[0] > 200 and with_reference.shape[1] > 400
    # the reference line adds dark grey ink (and a legend entry) to the same figure
    grey = (89, 89, 89)
    assert _share_of(with_reference, grey) > _share_of(without, grey)
