"""The negative-transfer guard: a from-scratch control trained on the same split, and a verdict.

A pretrained model is only worth shipping if it beats the same task learnt without pretraining;
on data far from the source domain it may not (Rosenstein et al. 2005; Wang et al., CVPR 2019,
"Characterizing and avoiding negative transfer").
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._format import counted

# Smallest accuracy difference worth knowing about. A noise band wider than this means the test set
# cannot resolve differences that matter, so a gain inside it is "inconclusive", not "negligible".
PRACTICAL_DIFFERENCE = 0.02

# What to try after transfer did not help, keyed by the run property that makes each one possible
# (see `transfer_advice`, which drops those the run already did or cannot do).
ADVICE = {
    "rank": "try another backbone: `transferkit rank DATA` scores the installed candidates on your data "
            "(or fit with --backbone auto to rank and fit the best)",
    "runner_up": "try the ranking's runner-up: --backbone {backbone}",
    "source": "try another source model (`transferkit list backbones`), or a forecast run on a related "
              "series as --backbone RUN",
    "full": "train every layer from the first step (--strategy full) so the features can move away from "
            "the source domain",
    "more_data": "label more training data",
    "more_history": "train on a longer history of the series",
    "test_size": "label more data for the test split: about {needed_n:,} test examples (now {n:,}) would tell",
}


def transfer_verdict(model: float, baseline: float, n: int, higher_is_better: bool = True,
                     name: str = "accuracy", *, strategy: str | None = None, modality: str | None = None,
                     ranking: dict | None = None) -> dict[str, Any]:
    """Gain of the transferred model over the from-scratch control, whether it is real, and advice.

    For accuracies the noise band is two binomial standard errors of the difference on `n` test
    examples (pooled accuracy, Laplace-smoothed). Beyond it the verdict is "positive" or
    "negative" (negative transfer). Inside it, a band wider than `PRACTICAL_DIFFERENCE` cannot
    rule out a difference that matters: the verdict is "inconclusive" and `needed_n` is the
    test-set size whose band would resolve the observed gain (or `PRACTICAL_DIFFERENCE`, if
    larger); a narrower band makes it "negligible".
    For errors (MSE) the band is 2 % of the control's error, since their scale depends on the data.
    `strategy` (the strategy used), `modality` and `ranking` (backbone="auto"'s ranking) describe
    the run, so the advice never suggests what it already did; without them that advice is left out.
    """
    gain = (model - baseline) if higher_is_better else (baseline - model)
    needed_n = None
    if name == "accuracy":
        # pooled accuracy with one success and one failure added (Laplace): at 100 % or 0 % the
        # plain estimate has no variance and would call 10 test examples enough to tell
        n = max(1, int(n))
        p = (n * (model + baseline) / 2 + 1) / (n + 2)
        noise = 2 * math.sqrt(2 * p * (1 - p) / n)
    else:  # errors (MSE): a relative band, since their scale depends on the data
        noise = 0.02 * abs(baseline)
    if gain > noise:
        verdict = "positive"
    elif gain < -noise:
        verdict = "negative"
    elif name == "accuracy" and noise > PRACTICAL_DIFFERENCE:
        verdict = "inconclusive"
        # solve 2 * sqrt(2 p (1 - p) / n) = resolve for n, at today's estimate of p
        resolve = max(abs(gain), PRACTICAL_DIFFERENCE)
        needed_n = math.ceil(8 * p * (1 - p) / resolve ** 2)
    else:
        verdict = "negligible"
    out = {"metric": name, "model": model, "baseline": baseline, "gain": gain, "noise": noise, "n": n,
           "verdict": verdict, "needed_n": needed_n}
    advice = transfer_advice(out, strategy=strategy, modality=modality, ranking=ranking)
    if advice:
        out["advice"] = advice
    return out


def transfer_advice(check: dict, *, strategy: str | None = None, modality: str | None = None,
                    ranking: dict | None = None) -> list[str]:
    """What to try next after a verdict, limited to what this run has not done and can do.

    Only a real shortfall (negative, negligible) gets model advice; an inconclusive verdict gets
    the test-set size that would settle it; a positive one gets none.
    """
    verdict = check.get("verdict")
    if verdict == "inconclusive":
        return [ADVICE["test_size"].format(needed_n=check["needed_n"], n=check.get("n") or 0)]
    if verdict not in ("negative", "negligible"):
        return []
    advice = []
    rows = (ranking or {}).get("rows") or []
    if modality == "timeseries":
        advice.append(ADVICE["source"])
    elif len(rows) > 1:  # backbone=auto already ranked: the next candidate is the one to try
        advice.append(ADVICE["runner_up"].format(backbone=rows[1].get("backbone") or rows[1].get("candidate")))
    elif modality in ("image", "text") and not rows:
        advice.append(ADVICE["rank"])
    if strategy and strategy != "full":
        advice.append(ADVICE["full"])
    advice.append(ADVICE["more_history" if modality == "timeseries" else "more_data"])
    return advice


def verdict_headline(check: dict) -> str:
    """One sentence for a verdict of `transfer_verdict`, shared by the CLI and the report."""
    verdict = check.get("verdict")
    if verdict == "positive":
        return "Transfer helped: the pretrained model beats the from-scratch control"
    if verdict == "negative":
        return "NEGATIVE TRANSFER: the from-scratch control is better"
    if verdict == "negligible":
        return "No measurable difference between the pretrained model and the from-scratch control"
    if verdict == "inconclusive":
        n = check.get("n")
        size = f"the test set ({n:,} {check.get('unit', 'examples')})" if n else "the test set"
        text = f"Inconclusive: {size} is too small to tell"
        if check.get("needed_n"):
            resolve = max(abs(check.get("gain") or 0.0), PRACTICAL_DIFFERENCE)
            text += f"; about {check['needed_n']:,} examples would resolve a difference of {100 * resolve:.1f} points"
        return text
    return str(verdict)


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
        batch_size=est.batch_size, lr=1e-3, augment=est.augment, tta=est.tta, seed=est.seed, progress=est.progress,
        baseline=False,
    )
    control._max_seconds = cap
    control.fit(est.data_)
    accuracy = control.evaluate()["accuracy"]
    return {"model": f"{architecture}, random weights, all layers trained "
                     f"({counted(control.strategy_settings_.get('epochs_run') or 0, 'epoch')}, lr 1e-3, "
                     f"time cap {cap:.0f} s)", "accuracy": accuracy}


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
