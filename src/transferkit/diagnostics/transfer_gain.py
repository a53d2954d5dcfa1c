"""The negative-transfer guard: a from-scratch control trained on the same split, and a verdict.

A pretrained model is only worth shipping if it beats the same task learnt without pretraining;
on data far from the source domain it may not (Rosenstein et al. 2005; Wang et al., CVPR 2019,
"Characterizing and avoiding negative transfer").
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

ADVICE = [
    "try another backbone (`transferkit rank` scores the candidates on your data)",
    "unfreeze more layers (--strategy full) so the features can move away from the source domain",
    "adapt to the target domain (domain adaptation with unlabeled target data) or collect more labelled data",
]


def transfer_verdict(model: float, baseline: float, n: int, higher_is_better: bool = True,
                     name: str = "accuracy") -> dict[str, Any]:
    """Gain of the transferred model over the from-scratch control, and whether it is real.

    For accuracies the noise level is two binomial standard errors of the difference on `n` test
    examples; a gain inside it is "negligible", below it "negative" (negative transfer).
    """
    gain = (model - baseline) if higher_is_better else (baseline - model)
    if name == "accuracy":
        p = min(max((model + baseline) / 2, 1e-3), 1 - 1e-3)
        noise = 2 * math.sqrt(2 * p * (1 - p) / max(1, n))
    else:  # errors (MSE): a relative band, since their scale depends on the data
        noise = 0.02 * abs(baseline)
    verdict = "positive" if gain > noise else ("negative" if gain < -noise else "negligible")
    out = {"metric": name, "model": model, "baseline": baseline, "gain": gain, "noise": noise, "verdict": verdict}
    if verdict != "positive":
        out["advice"] = ADVICE
    return out


#: The trained control's time cap: a fraction of the fit's time, and at most a minute per SMALL_DATA
#: training images, so a quick default does not double its wall time for the check.
CONTROL_SECONDS = 60.0
CONTROL_FRACTION = 0.5


def image_scratch_control(est, budget: float) -> dict[str, Any]:
    """The no-transfer control matched to what the run did, scored the way the run is scored.

    A linear probe gets the same head (logistic regression, the same C selection, the same
    cross-validation or split) on features of the same architecture with random weights: one
    forward pass, no training. A fine-tuned model gets the same architecture with random weights,
    all layers trained (capacity equal by construction) within a time cap: half of `budget` (the
    transferred model's fit time), at most a minute per 1,000 training images.
    """
    from ..strategies.auto import SMALL_DATA
    from ..tasks.image_classification import ImageClassifier

    info = est.backbone_info_
    # a registered backbone rebuilds with its own preprocessing; otherwise the timm architecture
    architecture = info["name"] if info.get("family") != "timm" else info["architecture"]
    if est.strategy_ == "linear-probe":
        return _random_feature_probe(est, architecture)
    epochs = int(est.strategy_settings_.get("epochs_run") or est.strategy_settings_.get("epochs") or 3)
    per_size = CONTROL_SECONDS * max(1.0, len(est.data_.train) / SMALL_DATA)
    cap = min(per_size, max(15.0, CONTROL_FRACTION * budget))
    control = ImageClassifier(
        backbone=f"scratch:{architecture}", strategy="auto", epochs=max(1, epochs), image_size=est.image_size_,
        batch_size=est.batch_size, lr=1e-3, augment=est.augment, tta=est.tta, seed=est.seed, progress=False,
        baseline=False,
    )
    control._max_seconds = cap
    control.fit(est.data_)
    accuracy = control.evaluate()["accuracy"]
    return {"model": f"{architecture}, random weights, all layers trained ({control.strategy_settings_.get('epochs_run')} "
                     f"epochs, lr 1e-3, time cap {cap:.0f} s)", "accuracy": accuracy}


def _random_feature_probe(est, architecture: str) -> dict[str, Any]:
    """The linear probe's matched control: its head on features of `architecture` with random weights."""
    import torch

    from ..backbones import create_backbone
    from ..strategies.features import extract_features
    from ..strategies.linear_probe import cross_validated_head, fit_logistic_head

    torch.manual_seed(est.seed)
    body = create_backbone(f"scratch:{architecture}", modality="image").model.eval()
    d, k = est.data_, len(est.classes_)

    def features(samples):
        return extract_features(body, est._dataset(samples.paths, samples.labels), hflip=est.tta, progress=False)

    train_x, train_y = features(d.train)
    estimate = getattr(est, "estimate_", None)
    if estimate:
        _, _, c, oof = cross_validated_head(train_x, train_y, k, est.seed, int(estimate["folds"]))
        accuracy, scored = float((oof.argmax(1) == train_y).mean()), estimate["method"]
    else:
        head, _, c = fit_logistic_head(train_x, train_y, *features(d.val), k, est.seed)
        test_x, test_y = features(d.test)
        with torch.no_grad():
            accuracy = float((head(torch.as_tensor(test_x)).argmax(1).numpy() == test_y).mean())
        scored = "the test split"
    return {"model": f"{architecture}, random weights, frozen: the same logistic head and C selection (C={c:g}), "
                     f"scored by {scored}; one forward pass, no training", "accuracy": accuracy}


def text_scratch_control(est, budget: float) -> dict[str, Any]:
    """TF-IDF word and character n-grams + logistic regression (C on validation): the standard
    from-scratch text classifier, strong on small data and trained in seconds (well within `budget`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    d = est.data_
    train_x, train_y = d.train.texts, np.asarray(d.train.labels)
    best = None
    for c in (0.3, 1.0, 3.0, 10.0):
        model = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            LogisticRegression(C=c, max_iter=2000))
        model.fit(train_x, train_y)
        score = model.score(d.val.texts, d.val.labels) if len(d.val) else 0.0
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    accuracy = float(model.score(d.test.texts, d.test.labels))
    return {"model": f"TF-IDF word 1-2-grams + char 2-5-grams, logistic regression (C={c:g})", "accuracy": accuracy}
