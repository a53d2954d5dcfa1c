"""The negative-transfer guard: a from-scratch control trained on the same split, and a verdict.

A pretrained model is only worth shipping if it beats the same task learnt without pretraining;
on data far from the source domain it may not (Rosenstein et al. 2005; Wang et al., CVPR 2019,
"Characterizing and avoiding negative transfer").
"""
from __future__ import annotations

import math
from typing import Any, Collection

import numpy as np

from .._format import counted
from ..strategies.registry import traits

# Smallest accuracy difference worth knowing about. A noise band wider than this means the test set
# cannot resolve differences that matter, so a gain inside it is "inconclusive", not "negligible".
PRACTICAL_DIFFERENCE = 0.02

# What to try after transfer did not help. A task names the keys its runs can act on (its
# `transfer_suggestions`); `transfer_advice` drops those this run already did or cannot do.
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

#: The suggestions for a caller that does not say what its task can do: none that needs a
#: particular kind of backbone or data.
GENERAL_SUGGESTIONS = ("runner_up", "full", "more_data")


def transfer_verdict(model: float, baseline: float, n: int, higher_is_better: bool = True,
                     name: str = "accuracy", *, strategy: str | None = None, ranking: dict | None = None,
                     suggest: Collection[str] = GENERAL_SUGGESTIONS, noise: float | None = None) -> dict[str, Any]:
    """Gain of the transferred model over the from-scratch control, whether it is real, and advice.

    For accuracies the noise band is two binomial standard errors of the difference on `n` test
    examples (pooled accuracy, Laplace-smoothed). Beyond it the verdict is "positive" or
    "negative" (negative transfer). Inside it, a band wider than `PRACTICAL_DIFFERENCE` cannot
    rule out a difference that matters: the verdict is "inconclusive" and `needed_n` is the
    test-set size whose band would resolve the observed gain (or `PRACTICAL_DIFFERENCE`, if
    larger); a narrower band makes it "negligible".
    For errors (MSE) the band is 2 % of the control's error, since their scale depends on the data.
    A `noise` given (a bootstrap band over the test examples, as detection measures mAP) is used
    as it is; its `needed_n` assumes the band narrows as one over the square root of `n`.
    `strategy` (the strategy used) and `ranking` (backbone="auto"'s ranking) describe the run, so
    the advice never suggests what it already did; without them that advice is left out. `suggest`
    names the `ADVICE` the run's task can act on (its estimator's `transfer_suggestions`).
    """
    gain = (model - baseline) if higher_is_better else (baseline - model)
    needed_n = None
    measured = noise is not None and math.isfinite(noise)
    if measured:
        n = max(1, int(n))
    elif name == "accuracy":
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
    elif measured and noise > PRACTICAL_DIFFERENCE:
        verdict = "inconclusive"
        needed_n = math.ceil(n * (noise / max(abs(gain), PRACTICAL_DIFFERENCE)) ** 2)
    elif name == "accuracy" and noise > PRACTICAL_DIFFERENCE:
        verdict = "inconclusive"
        # solve 2 * sqrt(2 p (1 - p) / n) = resolve for n, at today's estimate of p
        resolve = max(abs(gain), PRACTICAL_DIFFERENCE)
        needed_n = math.ceil(8 * p * (1 - p) / resolve ** 2)
    else:
        verdict = "negligible"
    out = {"metric": name, "model": model, "baseline": baseline, "gain": gain, "noise": noise, "n": n,
           "verdict": verdict, "needed_n": needed_n}
    advice = transfer_advice(out, strategy=strategy, ranking=ranking, suggest=suggest)
    if advice:
        out["advice"] = advice
    return out


def transfer_advice(check: dict, *, strategy: str | None = None, ranking: dict | None = None,
                    suggest: Collection[str] = GENERAL_SUGGESTIONS) -> list[str]:
    """What to try next after a verdict: the `suggest`ed `ADVICE` this run has not done and can do.

    Only a real shortfall (negative, negligible) gets model advice; an inconclusive verdict gets
    the test-set size that would settle it; a positive one gets none.
    """
    verdict = check.get("verdict")
    if verdict == "inconclusive":
        return [ADVICE["test_size"].format(needed_n=check["needed_n"], n=check.get("n") or 0)]
    if verdict not in ("negative", "negligible"):
        return []
    rows = (ranking or {}).get("rows") or []
    possible = {
        "rank": not rows,  # backbone=auto already ranked: its runner-up is the one to try
        "runner_up": len(rows) > 1,
        "full": bool(strategy) and not traits(strategy).trains_all_layers,
    }
    runner_up = rows[1].get("backbone") or rows[1].get("candidate") if len(rows) > 1 else None
    return [text.format(backbone=runner_up) for key, text in ADVICE.items()
            if key in suggest and key != "test_size" and possible.get(key, True)]


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
