"""The domain diagnostics say what they were measured on, quote references only for the data they
were calibrated on, and give no advice that the run's own strategy just declined."""
import re
from html import unescape

from transferkit.diagnostics import interpret_shift, read_domain
from transferkit.diagnostics.domain_shift import IMAGE_SHIFT_REFERENCE, PARTLY_SEPARABLE
from transferkit.reporting import RunReport, render_html
from transferkit.tasks import Forecaster, ImageClassifier

MEASURED = {"examples": 255, "of": 720, "unit": "example"}


def domain(shift: float = 0.95, reference: str | None = IMAGE_SHIFT_REFERENCE) -> dict:
    return {"batchnorm_shift": {"layer": "bn2", "channels": 1280, "shift": shift, "mean_shift": 0.8,
                                "log_variance_ratio": 0.2, "interpretation": interpret_shift(shift),
                                "reference": reference, **MEASURED},
            "separability": {"cv_accuracy": 0.63, "train_accuracy": 1.0, "chance": 0.2,
                             "interpretation": PARTLY_SEPARABLE, **MEASURED}}


def text_of(task: str, measured: dict) -> str:
    html = render_html(RunReport(title="t", task=task, config={}, metrics={}, history=[], decisions=[],
                                 data_summary={}, timings={}, domain=measured))
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", " ", html, flags=re.S))).split())


def test_a_frozen_run_is_not_told_to_fine_tune_and_a_fine_tuned_one_is():
    frozen = read_domain(domain(), backbone_trained=False)
    for figure in ("batchnorm_shift", "separability"):
        assert "this run kept the backbone frozen" in frozen[figure]["interpretation"]
    assert "should add clearly" not in frozen["separability"]["interpretation"]
    tuned = read_domain(domain(), backbone_trained=True)
    assert tuned["separability"]["interpretation"] == PARTLY_SEPARABLE
    assert tuned["batchnorm_shift"]["interpretation"] == interpret_shift(0.95)


def test_the_report_counts_the_sample_and_quotes_image_references_only_for_images():
    image = text_of("image-classification", read_domain(domain(), backbone_trained=False))
    assert "measured on 255 of the 720 training examples" in image
    assert "Linear separability of the pretrained features (255 of the 720 training examples)" in image
    assert "256 training examples" not in image and "should add clearly over a linear probe" not in image
    assert f"For reference: {IMAGE_SHIFT_REFERENCE}." in image
    series = read_domain(domain(0.47, reference=Forecaster.domain_shift_reference) | {"separability": None},
                         backbone_trained=True)
    forecast = text_of("forecast", {k: v for k, v in series.items() if v})
    assert "flowers" not in forecast and "digits" not in forecast and "For reference" not in forecast
    assert "not graded: no reference shifts were measured for this kind of data" in forecast
    assert "should transfer well" not in forecast


def test_only_image_tasks_declare_shift_references():
    assert ImageClassifier.domain_shift_reference == IMAGE_SHIFT_REFERENCE
    assert Forecaster.domain_shift_reference is None


def test_the_unfreezing_caption_appears_only_where_the_trainable_groups_changed():
    def curves(groups: list[int]) -> str:
        history = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": 1.0, "trainable_groups": g}
                   for i, g in enumerate(groups)]
        return render_html(RunReport(title="t", task="forecast", config={}, metrics={}, history=history,
                                     decisions=[], data_summary={}, timings={}))

    assert "(unfreezing)" in curves([3, 4, 4])
    assert "(unfreezing)" not in curves([4, 4, 4])  # `full`: every group trains from the first epoch
