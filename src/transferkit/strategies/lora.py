"""LoRA (Hu et al. 2021): low-rank adapters in the attention projections, trained with a new head.

The pretrained weights stay frozen and shared; a run saves only the adapter and head weights
(a few hundred KB), and reloading rebuilds the base backbone by name and injects the adapters.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import TransferkitError
from ..models import TransferModel
from .base import FitData, FitOutcome, Strategy, TrainSettings
from .fine_tune import default_epochs
from .freezing import GradualUnfreeze, set_trainable

#: Attention projections LoRA adapts by default, by the names common model families give them
#: (BERT query/value, DistilBERT q_lin/v_lin, LLaMA-style q_proj/v_proj, T5 q/v, timm ViT qkv).
DEFAULT_TARGETS = ("query", "value", "q_lin", "v_lin", "q_proj", "v_proj", "q", "v", "qkv")


@dataclass
class LoraOptions:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=list)  # empty: attention projections (DEFAULT_TARGETS)
    lr: float = 5e-4  # adapters start at zero, so they take a higher LR than full fine-tuning
    head_lr: float = 2e-3
    warmup_fraction: float = 0.1


def lora_targets(module: nn.Module, requested: list[str] | None = None) -> list[str]:
    """Leaf names of the linear layers to adapt; raises when the backbone has none."""
    wanted = set(requested or DEFAULT_TARGETS)
    found = sorted({name.rsplit(".", 1)[-1] for name, m in module.named_modules()
                    if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in wanted})
    if not found:
        raise TransferkitError(
            f"lora found no linear layers named {', '.join(sorted(wanted))} in this backbone (LoRA adapts "
            "attention projections); use a transformer backbone, set --option target_modules='[\"name\"]', "
            "or use fine-tune.")
    return found


def inject_lora(module: nn.Module, settings: dict) -> nn.Module:
    """Add LoRA adapters to `module` in place (parameter names gain `lora_A`/`lora_B`)."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=settings["r"], lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                        target_modules=settings["targets"])
    return inject_adapter_in_model(config, module)


def rebuild_adapter_model(info: dict, settings: dict, state: dict[str, torch.Tensor],
                          build_model: Callable[[nn.Module, int], TransferModel]) -> TransferModel:
    """The model of a LoRA run: base backbone (by name) + adapters + heads (`build_model(body,
    num_features)`, the task's model), filled from `state` (adapter and head tensors)."""
    from ..backbones import create_backbone

    backbone = create_backbone(info["name"], modality=info.get("modality"))
    body = inject_lora(backbone.model, settings)
    model = build_model(body, backbone.num_features)
    result = model.load_state_dict(state, strict=False)
    missing_adapters = [k for k in result.missing_keys if _is_saved(k)]
    if result.unexpected_keys or missing_adapters:
        raise TransferkitError(f"adapter weights do not fit backbone {info['name']!r} "
                               f"(unexpected {result.unexpected_keys[:3]}, missing {missing_adapters[:3]}).")
    return model


def _is_saved(key: str) -> bool:
    """Whether a LoRA run saves the tensor `key`: adapters and heads (the base weights come from the backbone)."""
    return "lora_" in key or key.startswith("heads.")


class Lora(Strategy):
    """Frozen backbone with trainable low-rank adapters (peft) and a new head."""

    name = "lora"

    Options = LoraOptions

    saved_weights = "adapter"

    @classmethod
    def weights_to_save(cls, model: TransferModel, settings: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.state_dict().items() if _is_saved(k)}

    @classmethod
    def restore(cls, info: dict[str, Any], settings: dict[str, Any], state: dict[str, torch.Tensor],
                build_model: Callable[[nn.Module, int], TransferModel], run_dir: Path) -> TransferModel:
        """The base backbone rebuilt by name (installed here, never downloaded) with the saved adapters and heads."""
        from ..backbones.run_dir import check_adapter_base

        check_adapter_base(info, run_dir)
        return rebuild_adapter_model(info, settings, state, build_model)

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
            total_steps=epochs * steps_per_epoch(len(data.train), settings.batch_size),
            warmup_fraction=o.warmup_fraction,
        )
        losses, weights = build_losses(data, settings)
        module = TransferModule(model, [adapter_names], schedule, losses, LayerGroupUnfreezing(GradualUnfreeze(1, 1, 0)),
                                weights, unlabelled=data.unlabelled_loader(settings))
        run = run_lightning(module, *data.training_loaders(settings), epochs, settings)
        model.eval()
        trainable = sum(p.numel() for n, p in model.backbone.named_parameters() if "lora_" in n)
        total = sum(p.numel() for p in model.backbone.parameters())
        return FitOutcome(
            history=run.history,
            settings={**asdict(o), **lora, "lr": lr, "epochs": epochs, "epochs_run": run.epochs_run,
                      "weights": "adapter", "adapter_parameters": trainable},
            timings={"lora training": run.seconds},
            notes=run.notes + [f"{trainable:,} adapter parameters trained ({100 * trainable / total:.2f} % of the "
                               f"backbone's {total:,}); only adapters and head are saved"],
        )
