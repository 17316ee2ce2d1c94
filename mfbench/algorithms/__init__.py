"""Learning rules: one module per rule, each registering itself in RULES.

Every module in this package is imported on first use, so adding a rule is adding
a file; neither the runner nor this registry changes.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil

from mfbench.algorithms.base import RULES, LearningRule, Option, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["RULES", "LearningRule", "Option", "register", "build", "for_memory"]


def build(model, num_classes: int, cfg) -> LearningRule:
    return RULES[cfg.algorithm](model, num_classes, cfg)


def for_memory(cfg):
    """`cfg` with its rule's `memory_options` wherever the spec leaves that option unset:
    what memory is measured on is the step as the paper's algorithm takes it."""
    return dataclasses.replace(cfg, options={**RULES[cfg.algorithm].memory_options, **cfg.options})
