"""The one exception every layer raises for bad user input (the CLI prints it alone and exits 2).

It sits below every other module: `config` validates a run against the registries of rules,
datasets and architectures, so it imports them, and they (and everything else) raise this
without importing `config` (the import-linter contract in pyproject.toml keeps it so).
"""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input. The CLI prints the message alone (no traceback) and exits 2."""
