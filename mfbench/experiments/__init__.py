"""What Snakemake jobs run besides `mfbench train`: one module per paper artefact group.

Each module defines `add_command(subparsers)` registering its `mfbench <name>`
subcommand(s) (helpers, such as `minimal`, define none); the CLI discovers them, so adding an
experiment touches no other file.
Measurements go to tidy CSVs (columns as `mfbench.run.COLUMNS`, plus any extra
keys an artefact needs); figures are drawn from those CSVs by `mfbench.plots`.

Discovery reads each module's source for its `add_parser("name", help="...")` calls
instead of importing it: importing one costs pandas or torch (seconds), and
`mfbench --help` or an aggregation job should pay only for the module it runs.
"""
from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType


def modules() -> list[ModuleType]:
    """Every module that registers commands (defines `add_command`); a helper that registers none
    (`minimal`: the reference steps `speed` times) is imported by the module that uses it."""
    found = sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    return [importlib.import_module(f"{__name__}.{m.name}") for m in found
            if m.ispkg or "\ndef add_command(" in Path(__path__[0], f"{m.name}.py").read_text()]


@functools.cache
def commands() -> dict[str, tuple[str, str]]:
    """`mfbench` subcommand -> (module that registers it, its help), without importing any module.

    A module's commands are the literal `add_parser("name", help="...")` calls in its source
    (tests/test_cli.py checks this equals what `add_command` really registers)."""
    out: dict[str, tuple[str, str]] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if m.ispkg:
            continue
        src = Path(__path__[0], f"{m.name}.py").read_text()
        at = src.find("\ndef add_command(")
        if at < 0:
            continue
        tree = ast.parse(src[at:])  # the module's tail from add_command on: a fraction of the parsing
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_parser"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                helps = [k.value.value for k in node.keywords if k.arg == "help" and isinstance(k.value, ast.Constant)]
                out[node.args[0].value] = (f"{__name__}.{m.name}", helps[0] if helps else "")
    return out


def table_args(parser, inputs: str = "run CSVs written by `mfbench train`", out: str = "table CSV"):
    """The arguments every summary command shares: its input CSVs, its output CSV and its figure."""
    parser.add_argument("inputs", nargs="+", help=inputs)
    parser.add_argument("--out", required=True, help=out)
    parser.add_argument("--figure", required=True, help="figure path (.png; a .pdf is written beside it)")
    return parser
