"""The model every strategy trains and every task saves: a backbone followed by named heads."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

#: The name of the head a model gets when it is built with one (what `model.head` refers to).
DEFAULT_HEAD = "main"


class TransferModel(nn.Module):
    """A pretrained `backbone` (input → pooled features) followed by named heads (features → outputs).

    A model has one head (`DEFAULT_HEAD`) unless a task or strategy adds more: multi-task heads,
    a domain discriminator, a head grown to new classes. `model.head` is the default head and
    `forward` runs it; `forward_heads` runs every head on one pass of the backbone.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module | Mapping[str, nn.Module],
                 default_head: str = DEFAULT_HEAD) -> None:
        super().__init__()
        self.backbone = backbone
        heads = dict(head) if isinstance(head, Mapping) else {default_head: head}
        if default_head not in heads:
            raise ValueError(f"default head {default_head!r} is not among the heads {sorted(heads)}")
        self.heads = nn.ModuleDict(heads)
        self.default_head = default_head

    @property
    def head(self) -> nn.Module:
        """The default head (assign to replace it, e.g. with one grown to more classes)."""
        return self.heads[self.default_head]

    def __setattr__(self, name: str, value) -> None:
        # nn.Module.__setattr__ would register `model.head = new` as a stray submodule named "head"
        # (bypassing a property setter), so replacing the default head is routed here
        if name == "head":
            self.heads[self.default_head] = value
        else:
            super().__setattr__(name, value)

    def add_head(self, name: str, module: nn.Module) -> None:
        """Add (or replace) the head called `name`."""
        self.heads[name] = module

    def forward(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        return self.heads[head or self.default_head](self.backbone(x))

    def forward_heads(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's output on one backbone pass (multi-task training, domain discriminators)."""
        features = self.backbone(x)
        return {name: module(features) for name, module in self.heads.items()}

    def probe_pairs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, targets) rows on which a linear head is fit in closed form (regression probe)."""
        return self.backbone(x), y
