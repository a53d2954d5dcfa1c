"""Train and eval transforms built from a backbone's preprocessing (never hard-coded mean/std)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping


@dataclass
class Preprocessing:
    """Input normalisation and size a backbone was pretrained with (from timm's pretrained_cfg)."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    image_size: int = 224
    interpolation: str = "bicubic"

    @classmethod
    def from_pretrained_cfg(cls, cfg: Mapping[str, Any]) -> "Preprocessing":
        return cls(
            mean=tuple(cfg.get("mean", cls.mean)),
            std=tuple(cfg.get("std", cls.std)),
            image_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
            interpolation=str(cfg.get("interpolation", "bicubic")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_transform(pre: Preprocessing, image_size: int, augment: str = "light") -> Callable:
    """timm's training transform: random-resized crop + flip (+ colour jitter when `augment="strong"`).

    "light" keeps crops at 60-100 % of the image: the small photos this tool targets lose the
    object with timm's ImageNet default of 8 %.
    """
    from timm.data import create_transform

    if augment == "none":
        return eval_transform(pre, image_size)
    strong = augment == "strong"
    return create_transform(
        input_size=(3, image_size, image_size),
        is_training=True,
        scale=(0.35, 1.0) if strong else (0.6, 1.0),
        hflip=0.5,
        color_jitter=0.3 if strong else None,
        auto_augment="rand-m7-mstd0.5" if strong else None,
        interpolation=pre.interpolation,
        mean=pre.mean,
        std=pre.std,
    )


def eval_transform(pre: Preprocessing, image_size: int) -> Callable:
    """Resize the shorter side to `image_size`, centre-crop, normalise (no border cropping)."""
    from timm.data import create_transform

    return create_transform(
        input_size=(3, image_size, image_size),
        is_training=False,
        crop_pct=1.0,
        interpolation=pre.interpolation,
        mean=pre.mean,
        std=pre.std,
    )
