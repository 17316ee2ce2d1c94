"""Learning rules: one module per rule, each registering itself in RULES.

Every module in this package is imported on first use, so adding a rule is adding
a file; neither the runner nor this registry changes.
"""
from __future__ import annotations

import importlib
import pkgutil

from mfbench.algorithms.base import RULES, LearningRule, Option, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["RULES", "LearningRule", "Option", "register", "build"]


def build(model, num_classes: int, cfg) -> LearningRule:
    return RULES[cfg.algorithm](model, num_classes, cfg)
