"""Workflow configuration helpers used by workflow/rules/common.smk at parse time.

Torch-free on purpose: every Snakemake invocation (and every cluster job) parses the
Snakefile, and none of them should pay for importing torch.
"""
from __future__ import annotations

import os
import signal
import sys
import time
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


def clear_stale_locks(workdir: str = ".", wait: float = 60.0) -> str | None:
    """Remove the locks a killed Snakemake left behind, so the command that was running resumes.

    Snakemake's locks (.snakemake/locks/) record files, not a process, so after SIGKILL of the
    master they block every run until `--unlock`. Each master here also holds an flock on
    .snakemake/mfbench.master.lock for its lifetime (the kernel drops it however the process
    ends): if we can take it, no master is alive in this directory and any lock is stale.
    Returns what was done, or None. The flock is kept (module global) until this process exits.
    A master still running (e.g. one stopping after SIGTERM) is waited for up to `wait` seconds.
    """
    import fcntl

    global _MASTER_FD
    meta = os.path.join(workdir, ".snakemake")
    os.makedirs(meta, exist_ok=True)
    fd = os.open(os.path.join(meta, "mfbench.master.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            stopping = os.pread(fd, 64, 0).startswith(b"stopping")  # written by `stop_like_ctrl_c_on_sigterm`
            if not stopping or time.monotonic() >= deadline:
                os.close(fd)
                return None  # a live master holds it: its locks are real
            if not STOPPING_SAID:  # e.g. the same command started at once after a SIGTERM
                print(f"mfbench: the snakemake stopped in {os.path.abspath(workdir)} is still exiting; waiting up "
                      f"to {wait:.0f} s for it to release its locks", file=sys.stderr)
                STOPPING_SAID.append(True)
            time.sleep(0.5)
    _MASTER_FD = fd
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"running pid {os.getpid()}".encode(), 0)
    locks = os.path.join(meta, "locks")
    stale = [f for f in os.listdir(locks)] if os.path.isdir(locks) else []
    for f in stale:
        os.remove(os.path.join(locks, f))
    return f"removed {len(stale)} stale Snakemake lock file(s) left by a killed run" if stale else None


_MASTER_FD: int | None = None
STOPPING_SAID: list[bool] = []
STOPPED: list[str] = []  # the signal that stopped this run, if one did (for the closing lines)


def _mfbench_jobs(root: int) -> list[int]:
    """Process ids of the `mfbench` commands below process `root` (the jobs a controller started)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    found, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            todo.append(c)
            try:
                with open(f"/proc/{c}/cmdline", "rb") as f:
                    if b"mfbench" in f.read():
                        found.append(c)
            except OSError:
                pass
    return found


def stop_like_ctrl_c_on_sigterm() -> None:
    """SIGTERM to the controller (`kill`, a CI or allocation time limit) stops the run as Ctrl-C does:
    its running mfbench jobs get SIGTERM too (training keeps its checkpoint), Snakemake cancels the
    rest and releases its locks at once, and the closing lines say "stopped", not "FAILED".
    Snakemake's own SIGTERM handler would wait for every running job to finish, then report a
    failure, and keep its locks meanwhile (the same command started again would be refused)."""
    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        STOPPED.append("SIGTERM")
        if _MASTER_FD is not None:  # the same command started now waits for this one's exit (`clear_stale_locks`)
            os.ftruncate(_MASTER_FD, 0)
            os.pwrite(_MASTER_FD, f"stopping pid {os.getpid()}".encode(), 0)
        for pid in _mfbench_jobs(os.getpid()):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        raise KeyboardInterrupt  # Snakemake's own path for Ctrl-C: cancel the jobs, remove incomplete outputs

    signal.signal(signal.SIGTERM, stop)



# Rules with a stacked step (LearningRule.stackable; tests/test_stacking.py keeps the two equal): named
# here because the Snakefile is parsed without torch, and importing the rules imports it.
STACKABLE = ("bp", "dfa", "fa", "ff", "mf")
_STACK_DEFAULTS = {"arch": "mlp", "schedule": "simultaneous", "augment": False, "compile": "off", "precision": "fp32",
                   "lr_schedule": "constant"}
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
