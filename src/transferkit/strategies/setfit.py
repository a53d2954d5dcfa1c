"""SetFit-style few-shot learning: contrastive pair fine-tuning of the encoder, then a logistic head.

Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts": pairs of training texts are
labelled 1 (same class) or 0 (different class) and the encoder learns to put their embeddings'
cosine similarity there. With K examples per class this gives O(K²) training signals instead
of K, which is why it beats plain fine-tuning at 8-16 examples per class.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import TransferkitError
from ..models import TransferModel
from .base import FitData, FitOutcome, Strategy, TrainSettings
from .freezing import set_trainable
from .linear_probe import C_GRID, LinearProbe, probe


@dataclass
class SetFitOptions:
    pair_iterations: int = 20  # positive + negative pair per example per iteration (SetFit's num_iterations)
    max_pairs: int = 2000  # cap, so large "few-shot" sets stay minutes, not hours, on a CPU
    lr: float = 2e-5  # SetFit's body learning rate
    epochs: int = 1
    batch_size: int = 16
    warmup_fraction: float = 0.1


def make_pairs(labels: list[int], iterations: int, max_pairs: int, seed: int) -> list[tuple[int, int, float]]:
    """(i, j, 1.0) for same-class and (i, j, 0.0) for different-class pairs, one of each per example
    per iteration, shuffled and capped at `max_pairs`."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    by_class = {c: np.flatnonzero(labels_arr == c) for c in np.unique(labels_arr)}
    pairs = []
    for _ in range(iterations):
        for i, y in enumerate(labels_arr):
            same, other = by_class[y], np.flatnonzero(labels_arr != y)
            if len(same) > 1:
                pairs.append((i, int(rng.choice(same[same != i])), 1.0))
            if len(other):
                pairs.append((i, int(rng.choice(other)), 0.0))
    order = rng.permutation(len(pairs))[:max_pairs]
    return [pairs[k] for k in order]


class SetFit(Strategy):
    """Contrastive pair fine-tuning of the encoder, then a logistic-regression head on its embeddings."""

    name = "setfit"
    searched_params = ()  # its own options set the pair training; the shared lr and epochs are not read

    Options = SetFitOptions
    # the encoder is tuned once, in `fit`: growing refits the head on its fixed embeddings, as a probe's
    extend = LinearProbe.extend

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        texts = getattr(data.train_plain, "texts", None)
        if texts is None or data.collate_fn is None:
            raise TransferkitError("setfit works on text data; for images use linear-probe or fine-tune.")
        import lightning as L  # here, so that loading a saved run never imports Lightning

        from .lightning_module import PairModule
        from .training import run_lightning

        o = self.options
        L.seed_everything(settings.seed, workers=True, verbose=False)
        pairs = make_pairs(data.labels, o.pair_iterations, o.max_pairs, settings.seed)
        collate = data.collate_fn

        def collate_pairs(batch):
            (a, _), (b, _) = collate([(texts[i], 0) for i, _, _ in batch]), collate([(texts[j], 0) for _, j, _ in batch])
            return (a, b), torch.tensor([t for _, _, t in batch], dtype=torch.float32)

        steps = max(1, o.epochs * -(-len(pairs) // o.batch_size))
        module = PairModule(model.backbone, o.lr, steps, o.warmup_fraction)
        set_trainable(model.backbone.parameters(), True)
        loader = DataLoader(pairs, batch_size=o.batch_size, shuffle=True, collate_fn=collate_pairs)
        run = run_lightning(module, loader, None, o.epochs, settings)
        set_trainable(model.backbone.parameters(), False)
        history, c, timings = probe(model, data, settings)
        model.eval()
        set_trainable(model.parameters(), True)
        return FitOutcome(
            history=run.history,
            settings={**asdict(o), "pairs": len(pairs), "C": c, "C_grid": list(C_GRID), "head_fit": history},
            timings={"contrastive fine-tuning": run.seconds, **timings},
            notes=run.notes + [f"encoder tuned on {len(pairs)} same/different-class pairs, then a logistic head (C={c:g})"],
        )
