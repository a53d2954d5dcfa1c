"""LoRA (Hu et al. 2021): low-rank adapters on a frozen backbone's projections, trained with a new head.

Adapted by default: the attention projections of transformers, and the 1×1 pointwise convolutions
of timm's EfficientNet/MobileNet blocks (`conv_pw`, `conv_pwl`; peft adapts `nn.Conv2d` with a
low-rank pair of convolutions); a 1×1 convolution with groups=1 is a linear map applied at every
pixel, the convolutional counterpart of a projection. Depthwise and wider convolutions are never
adapted.

What a run saves depends on its base (`Lora.saved_weights`): with pretrained weights the base is
rebuilt exactly from the backbone's name, so only the adapter and head weights are saved (a few
hundred KB) and reloading injects them into that base; a base without pretrained weights (e.g.
`patchtst-small`) is random and sized by the run's own config, so the whole model is saved and
reloading rebuilds the architecture from the run directory.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import TransferkitError
from ..models import TransferModel
from ..rundir import check_tensor_shapes
from .base import FitData, FitOutcome, Strategy, TrainSettings
from .fine_tune import default_epochs
from .freezing import GradualUnfreeze, set_trainable

#: Layers LoRA adapts by default, by the names common model families give them: attention
#: projections (BERT query/value, DistilBERT q_lin/v_lin, LLaMA-style q_proj/v_proj, T5 q/v,
#: timm ViT and PatchTST qkv) and the pointwise convolutions of timm's EfficientNet/MobileNet
#: blocks (conv_pw expands, conv_pwl projects back; only their 1×1, groups=1 instances qualify).
DEFAULT_TARGETS = ("query", "value", "q_lin", "v_lin", "q_proj", "v_proj", "q", "v", "qkv", "conv_pw", "conv_pwl")

#: a LoRA run's `weights` setting (and config.json's "weights"): adapters and heads only (the base
#: is rebuilt by name), or the whole model
ADAPTER, FULL = "adapter", "full"


@dataclass
class LoraOptions:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=list)  # empty: DEFAULT_TARGETS found in the backbone
    lr: float = 5e-4  # adapters start at zero, so they take a higher LR than full fine-tuning
    head_lr: float = 2e-3
    warmup_fraction: float = 0.1


def adaptable(module: nn.Module) -> bool:
    """Whether peft's LoRA adapts `module` as a projection: a linear layer, or a 1×1 convolution with
    groups=1 (a per-pixel linear map; depthwise and wider kernels are not low-rank projections)."""
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and module.groups == 1


def lora_targets(module: nn.Module, requested: list[str] | None = None) -> list[str]:
    """Leaf names of the layers to adapt (`requested`, else `DEFAULT_TARGETS`); raises when the
    backbone has none.

    peft matches a target by the last part of a module's name, so it adapts every module of that
    name: a name qualifies only when every module carrying it is `adaptable`.
    """
    wanted = set(requested or DEFAULT_TARGETS)
    by_name: dict[str, list[nn.Module]] = {}
    for name, m in module.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in wanted:
            by_name.setdefault(leaf, []).append(m)
    found = sorted(leaf for leaf, modules in by_name.items() if all(adaptable(m) for m in modules))
    if not found:
        raise TransferkitError(
            f"lora found no layers named {', '.join(sorted(wanted))} in this backbone that it can adapt (linear "
            "layers, e.g. attention projections, or 1×1 convolutions with groups=1, e.g. EfficientNet/MobileNet "
            "pointwise convolutions); set --option target_modules='[\"name\"]', or use fine-tune.")
    return found


def inject_lora(module: nn.Module, settings: dict) -> nn.Module:
    """Add LoRA adapters to `module` in place (parameter names gain `lora_A`/`lora_B`, the adapted
    layers' own weights move to `<layer>.base_layer`)."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=settings["r"], lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                        target_modules=settings["targets"])
    return inject_adapter_in_model(config, module)


def rebuild_adapter_model(info: dict, settings: dict, state: dict[str, torch.Tensor],
                          build_model: Callable[[nn.Module, int], TransferModel]) -> TransferModel:
    """The model of a LoRA run that saved adapters only: base backbone (by name, with its pretrained
    weights) + adapters + heads (`build_model(body, num_features)`, the task's model), filled from
    `state` (adapter and head tensors)."""
    from ..backbones import create_backbone

    backbone = create_backbone(info["name"], modality=info.get("modality"))
    body = inject_lora(backbone.model, settings)
    model = build_model(body, backbone.num_features)
    result = model.load_state_dict(state, strict=False)
    missing_adapters = [k for k in result.missing_keys if _is_adapter_or_head(k)]
    if result.unexpected_keys or missing_adapters:
        raise TransferkitError(f"adapter weights do not fit backbone {info['name']!r} "
                               f"(unexpected {result.unexpected_keys[:3]}, missing {missing_adapters[:3]}).")
    return model


def _is_adapter_or_head(key: str) -> bool:
    """Whether `key` is an adapter or head tensor (all an adapter-only run saves)."""
    return "lora_" in key or key.startswith("heads.")


def _saved_weights_plan(pretrained: bool) -> tuple[str, str]:
    """(what a LoRA run saves, why), for a base with or without pretrained weights."""
    if pretrained:
        return ("weights saved: adapters and head only",
                "the base backbone has pretrained weights, so loading rebuilds it exactly from its name")
    return ("weights saved: the whole model (base, adapters and head)",
            "the base has no pretrained weights, so the whole model is saved")


class Lora(Strategy):
    """Frozen backbone with trainable low-rank adapters (peft) and a new head."""

    name = "lora"

    Options = LoraOptions


    @classmethod
    def saved_weights(cls, settings: dict[str, Any]) -> str:
        """"adapter" when the run's base is rebuilt by name (pretrained), "full" otherwise; runs
        saved before the distinction existed were all adapter-only."""
        return settings.get("weights", ADAPTER)

    @classmethod
    def weights_to_save(cls, model: TransferModel, settings: dict[str, Any]) -> dict[str, torch.Tensor]:
        state = model.state_dict()
        if cls.saved_weights(settings) == FULL:
            return state
        return {k: v for k, v in state.items() if _is_adapter_or_head(k)}

    @classmethod
    def restore(cls, info: dict[str, Any], settings: dict[str, Any], state: dict[str, torch.Tensor],
                build_model: Callable[[nn.Module, int], TransferModel], run_dir: Path) -> TransferModel:
        """Adapter-only runs: the base backbone rebuilt by name (installed here, never downloaded)
        with the saved adapters and heads. Full runs: the architecture rebuilt from the run's own
        config (its `arch_config`), the recorded adapters injected, every tensor loaded strictly."""
        from ..backbones.run_dir import build_architecture, check_adapter_base

        if cls.saved_weights(settings) == FULL:
            body = inject_lora(build_architecture(info, run_dir), settings)
            model = build_model(body, int(info["num_features"]))
            check_tensor_shapes(model.state_dict(), state, run_dir)
            model.load_state_dict(state, strict=True)
            return model
        check_adapter_base(info, run_dir)
        return rebuild_adapter_model(info, settings, state, build_model)

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        return [*super().plan(data, settings), _saved_weights_plan(data.pretrained)]

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        # Lightning is imported here, not at the top, so that loading a saved run never imports it
        import lightning as L

        from .finetuning import LayerGroupUnfreezing
        from .lightning_module import Schedule, TransferModule, steps_per_epoch
        from .losses import build_losses
        from .training import run_lightning

        o = self.options
        L.seed_everything(settings.seed, workers=True, verbose=False)
        lora = {"r": o.r, "alpha": o.alpha, "dropout": o.dropout, "targets": lora_targets(model.backbone, o.target_modules)}
        set_trainable(model.backbone.parameters(), False)
        inject_lora(model.backbone, lora)
        adapter_names = [n for n, _ in model.backbone.named_parameters() if "lora_" in n]
        epochs = settings.epochs or default_epochs(len(data.train))
        lr = settings.lr or o.lr
        schedule = Schedule(
            group_lrs=[lr], head_lr=o.head_lr, weight_decay=settings.weight_decay,
            total_steps=epochs * steps_per_epoch(len(data.train), settings.batch_size * settings.processes),
            warmup_fraction=o.warmup_fraction,
        )
        losses, weights = build_losses(data, settings)
        module = TransferModule(model, [adapter_names], schedule, losses, LayerGroupUnfreezing(GradualUnfreeze(1, 1, 0)),
                                weights, unlabelled=data.unlabelled_loader(settings))
        run = run_lightning(module, *data.training_loaders(settings), epochs, settings)
        model.eval()
        trainable = sum(p.numel() for n, p in model.backbone.named_parameters() if "lora_" in n)
        total = sum(p.numel() for p in model.backbone.parameters())
        saved, why = _saved_weights_plan(data.pretrained)
        return FitOutcome(
            history=run.history,
            settings={**asdict(o), **lora, "lr": lr, "epochs": epochs, "epochs_run": run.epochs_run,
                      "weights": ADAPTER if data.pretrained else FULL, "adapter_parameters": trainable},
            timings={"lora training": run.seconds},
            notes=run.notes + [f"{trainable:,} adapter parameters trained ({100 * trainable / total:.2f} % of the "
                               f"backbone's {total:,})", f"{saved} ({why})"],
        )
