"""What a fit says it will do and what it did: the plan logged before training starts and the
decisions (what was chosen, and why) that the CLI and the report show.

`DecisionsMixin` is the part of `TransferEstimator` that words them; tasks extend `_plan_details`
and `_decisions` with their own lines.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from ..backbones import Backbone
    from ..strategies import FitData, FitOutcome, TrainSettings

#: Where the plan of a fit goes before training starts (see `DecisionsMixin._announce_plan`).
PLAN_LOG = logging.getLogger("transferkit.plan")


class DecisionsMixin:
    """The plan and decisions of a task estimator, as (decision, why) lines (see `TransferEstimator`)."""

    #: What `_scratch_control` trains, in the plan's words.
    control_description: ClassVar[str] = "a model without pretrained weights"

    def _decisions(self, backbone: Backbone, outcome: FitOutcome) -> list[tuple[str, str]]:
        """What the fit decided and why, as (decision, why) lines for the CLI and the report; tasks
        extend the backbone and strategy lines with their own."""
        return [self._backbone_decision(backbone), self._strategy_decision(outcome), self._compute_decision()]

    def _compute_decision(self) -> tuple[str, str]:
        """Where and how training ran: devices, distributed strategy, precision, compilation."""
        from ..strategies.distributed import Compute

        compute = Compute(**self.compute_)
        trained_together = torch.distributed.is_available() and torch.distributed.is_initialized()
        if compute.processes > 1 and hasattr(self, "model_") and not trained_together:
            # a frozen-feature strategy (linear probe, prototypes) runs no Lightning training to share
            return (f"compute: 1 {compute.accelerator} process, precision {compute.precision}",
                    f"strategy {self.strategy_} trained no network with Lightning, so "
                    f"the {compute.processes} processes asked for (--devices {compute.devices} --num-nodes "
                    f"{compute.num_nodes}) shared no training (Lightning's launcher started none; processes "
                    "started by torchrun or srun each did the same work)")
        if compute.processes > 1:
            why = (f"--devices {compute.devices} --num-nodes {compute.num_nodes}: Lightning's {compute.strategy} "
                   f"strategy; batch size {self.batch_size} per process, {compute.processes * (self.batch_size or 0)} "
                   "per optimiser step; only rank 0 writes the run")
        else:
            why = "--devices, --accelerator, --precision and --compile (precision auto: bf16-mixed on a GPU that " \
                  "supports it, 32 on CPU)"
        return (f"compute: {compute.describe()}", why)

    def _backbone_decision(self, backbone: Backbone) -> tuple[str, str]:
        if not self.ranking_:
            return ("backbone: " + backbone.name, backbone.source)
        r = self.ranking_
        scores = ", ".join(f"{row['candidate']} {row['scores'][r['metric']]:.3f}" for row in r["rows"])
        why = f"; {r['metric']} because {r['evidence']}" if r.get("evidence") else ""
        return ("backbone: " + backbone.name + " (auto)",
                f"highest {r['metric']} of {len(r['rows'])} installed candidates on {r['sample']['examples']} "
                f"training examples, in {r['seconds']:.0f} s ({scores}){why}; {backbone.source}")

    def _plan_details(self) -> list[tuple[str, str]]:
        """The task's own lines of the plan (input size, split...); tasks extend this."""
        return []

    def _announce_plan(self, strategy, fit_data: FitData, settings: TrainSettings) -> None:
        """Log what is about to be trained, and why, before training starts (logger `transferkit.plan`:
        the CLI prints it unless --quiet; from Python it is silent unless that logger is enabled)."""
        if not PLAN_LOG.isEnabledFor(logging.INFO):
            return
        lines = self._plan(strategy, fit_data, settings)
        PLAN_LOG.info("plan: " + "; ".join(decision for decision, _ in lines), extra={"plan": lines})

    def _plan(self, strategy, fit_data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        """The plan's (decision, why) lines: task, backbone, the strategy's plan, `_plan_details`
        and whether a from-scratch control follows."""
        info = self.backbone_info_
        return [
            (f"task: {self.task}", f"{len(fit_data.train)} training and {len(fit_data.val)} validation examples"),
            self._backbone_decision(SimpleNamespace(name=info.get("name"), source=info.get("source", ""))),
            *strategy.plan(fit_data, settings),
            *([(f"time cap: {self.max_seconds:g} s", "max_seconds (--max-seconds): training stops when it "
                "is reached")] if self.max_seconds else []),
            *self._plan_details(),
            *([self._compute_decision()] if self.compute_ else []),
            self._control_plan(fit_data.pretrained),
        ]

    def _control_plan(self, pretrained: bool) -> tuple[str, str]:
        """The plan's line on the from-scratch control, as `_control` will decide it: none without
        pretrained weights (nothing is transferred), else as `baseline` says."""
        if not pretrained:
            return ("from-scratch control: none", "no pretrained weights, so nothing is transferred: the model itself "
                    "trains from scratch, and there is no transfer gain to measure")
        if not self.baseline:
            return ("from-scratch control: no", "disabled (--no-baseline)")
        return ("from-scratch control: yes",
                f"after this fit: {self.control_description}, to measure the transfer gain")

    def _strategy_decision(self, outcome: FitOutcome) -> tuple[str, str]:
        return (f"strategy: {self.strategy_}",
                outcome.settings.get("reason", f"requested with --strategy {self.strategy}"))
