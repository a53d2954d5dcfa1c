"""Hyper-parameter search: an Optuna study (or Ray Tune across machines) over a caller's objective.

This layer knows nothing of tasks: a task passes `run_search` a search space (a define-by-run
function of an Optuna trial that returns the parameters to fit with) and an objective (fit with
those parameters, return the validation score), and gets back a JSON-ready summary of the study.
Optuna, Lightning and Ray are imported only when a search runs.
"""
from __future__ import annotations

from .search import run_search
from .study import BACKENDS, Objective, Reporter, Space

__all__ = ["BACKENDS", "Objective", "Reporter", "Space", "run_search"]
