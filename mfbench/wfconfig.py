"""Workflow configuration helpers used by workflow/rules/common.smk at parse time.

Torch-free on purpose: every Snakemake invocation (and every cluster job) parses the
Snakefile, and none of them should pay for importing torch.
"""
from __future__ import annotations

import os
from typing import Any

from mfbench.config import ConfigError, parse_scalar


class WorkflowConfigError(ConfigError):
    """A bad workflow config: one line naming the key and what is allowed."""


def typed(value: Any) -> Any:
    """`snakemake --config 'run={lr: 0.01}'` delivers nested values as text (Snakemake reads
    them with YAML's BaseLoader); give them the types a config file would."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return parse_scalar(value) if isinstance(value, str) else value


def command_line_overrides(overwrite: dict[str, Any]) -> dict[str, Any]:
    """The nested `--config` values, typed (top-level scalars Snakemake already typed)."""
    return {k: typed(v) for k, v in (overwrite or {}).items() if isinstance(v, (dict, list))}


def key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def short_error(err: Exception) -> str:
    """One line from a jsonschema ValidationError: where, what, and what is allowed."""
    # Snakemake wraps it in a WorkflowError raised while handling it (__context__)
    ve = next((e for e in (err, err.__cause__, err.__context__) if hasattr(e, "absolute_path")), err)
    if not hasattr(ve, "absolute_path"):
        return str(err).splitlines()[0]
    msg = ve.message if len(ve.message) < 300 else ve.message[:300] + "..."
    if ve.validator == "additionalProperties" and isinstance(ve.schema.get("properties"), dict):
        msg += f"; allowed: {', '.join(sorted(ve.schema['properties']))}"
    return f"workflow config {key_path(ve.absolute_path)}: {msg}"


def validate(validate_fn, config: dict, schema: str) -> None:
    """Snakemake's validate (it fills the schema's defaults), its 250-line dump cut to one line."""
    try:
        validate_fn(config, schema)
    except Exception as e:
        if type(e).__name__ == "WorkflowError" or hasattr(e, "absolute_path"):
            raise WorkflowConfigError(short_error(e)) from None
        raise


def clear_stale_locks(workdir: str = ".") -> str | None:
    """Remove the locks a killed Snakemake left behind, so the command that was running resumes.

    Snakemake's locks (.snakemake/locks/) record files, not a process, so after SIGKILL of the
    master they block every run until `--unlock`. Each master here also holds an flock on
    .snakemake/mfbench.master.lock for its lifetime (the kernel drops it however the process
    ends): if we can take it, no master is alive in this directory and any lock is stale.
    Returns what was done, or None. The flock is kept (module global) until this process exits.
    """
    import fcntl

    global _MASTER_FD
    meta = os.path.join(workdir, ".snakemake")
    os.makedirs(meta, exist_ok=True)
    fd = os.open(os.path.join(meta, "mfbench.master.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None  # a live master holds it: its locks are real
    _MASTER_FD = fd
    locks = os.path.join(meta, "locks")
    stale = [f for f in os.listdir(locks)] if os.path.isdir(locks) else []
    for f in stale:
        os.remove(os.path.join(locks, f))
    return f"removed {len(stale)} stale Snakemake lock file(s) left by a killed run" if stale else None


_MASTER_FD: int | None = None


# Rules with a stacked step (LearningRule.stackable; tests/test_stacking.py keeps the two equal): named
# here because the Snakefile is parsed without torch, and importing the rules imports it.
STACKABLE = ("bp", "dfa", "fa", "ff", "mf")
_STACK_DEFAULTS = {"arch": "mlp", "schedule": "simultaneous", "augment": False, "compile": "off", "precision": "fp32"}
_STACK_OPTIONS = {"mf": {"input_projection": False, "learn_projection": True}, "fa": {"local": "none"},
                  "ff": {"negatives": "random", "peer_norm": 0.0, "relu_grad": "standard"}}


def can_stack(spec: dict[str, Any]) -> bool:
    """Whether a run spec (what `mfbench train --spec` gets) may take seed_stack > 1: the check
    RunConfig makes at load, without torch."""
    if spec.get("algorithm", "mf") not in STACKABLE:
        return False
    if any(spec.get(k, v) != v for k, v in _STACK_DEFAULTS.items()):
        return False
    opts = spec.get("options") or {}
    return all(opts.get(k, v) == v for k, v in _STACK_OPTIONS.get(spec["algorithm"], {}).items())


def seed_stack(section: dict[str, Any], name: str) -> int:
    """A section's `seed_stack`, checked against its seeds (one line naming the key otherwise)."""
    k = section.get("seed_stack", 1)
    if k > len(section["seeds"]):
        raise WorkflowConfigError(f"workflow config {name}.seed_stack: {k} is more than the section's "
                                  f"{len(section['seeds'])} seeds; allowed: 1 to {len(section['seeds'])}")
    return k
