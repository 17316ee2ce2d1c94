"""What Snakemake jobs run besides `mfbench train`: one module per paper artefact group.

Each module defines `add_command(subparsers)` registering its `mfbench <name>`
subcommand(s); the CLI discovers them, so adding an experiment touches no other file.
Measurements go to tidy CSVs (columns as `mfbench.run.COLUMNS`, plus any extra
keys an artefact needs); figures are drawn from those CSVs by `mfbench.plots`.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m.name}") for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]
