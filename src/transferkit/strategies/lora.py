"""LoRA (Hu et al. 2021): low-rank adapters in the attention projections, trained with a new head.

The pretrained weights stay frozen and shared; a run saves only the adapter and head weights
(a few hundred KB), and reloading rebuilds the base backbone by name and injects the adapters.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import lightning as L
import torch
from torch import nn

from ..errors import TransferkitError
from ..models import TransferModel
from .base import FitData, FitOutcome, Strategy, TrainSettings
from .fine_tune import default_epochs
from .freezing import GradualUnfreeze, set_trainable
from .lightning_module import Schedule, TransferModule, steps_per_epoch
from .training import run_lightning

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


def rebuild_adapter_model(estimator, info: dict, settings: dict, state: dict[str, torch.Tensor]) -> TransferModel:
    """The model of a LoRA run: base backbone (by name) + adapters + head, filled from `state`."""
    from ..backbones import create_backbone

    backbone = create_backbone(info["name"], modality=info.get("modality"))
    body = inject_lora(backbone.model, settings)
    model = estimator._new_model(body, backbone.num_features)
    result = model.load_state_dict(state, strict=False)
    missing_adapters = [k for k in result.missing_keys if "lora_" in k or k.startswith("heads.")]
    if result.unexpected_keys or missing_adapters:
        raise TransferkitError(f"adapter weights do not fit backbone {info['name']!r} "
                               f"(unexpected {result.unexpected_keys[:3]}, missing {missing_adapters[:3]}).")
    return model


class Lora(Strategy):
    """Frozen backbone with trainable low-rank adapters (peft) and a new head."""

    name = "lora"

    Options = LoraOptions

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
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
            warmup_fraction=o.warmup_fraction, label_smoothing=settings.label_smoothing, freeze_bn_stats=True,
        )
        module = TransferModule(model, [adapter_names], schedule, GradualUnfreeze(1, 1, 0), data.num_classes,
                                data.objective)
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
