"""The fault battery: bad input and failures, each ending in success or one clear line + non-zero exit.

One TABLE (`CASES`): for each case the command, the expected exit status, a fragment of the message,
and the files that must / must not exist afterwards (globs, relative to the case's directory). It is
black-box (the `mfbench` CLI, in-process where it can be, a subprocess for signals, `snakemake` for
the workflow), so the same file measures any checkout: put that checkout first on PYTHONPATH.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pytest

import mfbench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mfbench.__file__)))  # the checkout under test
OUT = "out.csv"
TRAIN = ["train", "--dataset", "synthetic-mnist", "--depth", "2", "--width", "16", "--epochs", "1",
         "--train-subset", "300", "--batch-size", "100", "--device", "cpu", "--out", "{tmp}/" + OUT]
FAILED_LEAVES_NOTHING = (OUT, "out.meta.json", OUT + ".lock", ".*.tmp")
SUCCEEDED = ("out.csv", "out.meta.json")
CLEAN_AFTER_SUCCESS = (OUT + ".lock", ".*.tmp", OUT + ".ckpt.pt")


@dataclass
class Case:
    id: str
    argv: list[str]  # {tmp}, {data} are filled in
    rc: int
    msg: str  # must appear in the output
    exist: tuple[str, ...] | None = None  # None: SUCCEEDED when rc == 0
    absent: tuple[str, ...] | None = None  # None: FAILED_LEAVES_NOTHING / CLEAN_AFTER_SUCCESS
    setup: Callable | None = None  # setup(tmp, stack): may skip; stack (ExitStack) undoes it
    check: Callable | None = None  # check(tmp, output): extra assertions
    env: dict = field(default_factory=dict)
    how: str = "inproc"  # inproc | sigint | sigterm | snakemake | killed-workflow


def T(id, *extra, rc=2, msg="", **kw):
    """A `mfbench train` case: the tiny synthetic run plus `extra` flags (later flags win)."""
    return Case(id, TRAIN + list(extra), rc, msg, **kw)


# --- setups -----------------------------------------------------------------------------------------
def write_idx(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x800 + arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def tiny_mnist(tmp: str, stack=None) -> str:
    """A valid MNIST in torchvision's layout: 400 train (--train-subset 300 fits after validation) and 100 test images."""
    raw = os.path.join(tmp, "data", "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 400), ("t10k", 100)):
        write_idx(f"{raw}/{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(f"{raw}/{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    return raw


def damage(fn):
    """A setup: a valid tiny MNIST, then `fn(raw_dir)` damages it."""
    def setup(tmp, stack):
        fn(tiny_mnist(tmp))
    return setup


def _label_255(raw):
    with open(f"{raw}/train-labels-idx1-ubyte", "r+b") as f:
        f.seek(8 + 17)
        f.write(b"\xff")


def _labels_half(raw):  # a consistent file, but for half the images
    write_idx(f"{raw}/train-labels-idx1-ubyte", np.zeros(150, np.uint8))


def _labels_truncated(raw):  # header still says 300
    p = f"{raw}/train-labels-idx1-ubyte"
    os.truncate(p, os.path.getsize(p) - 150)


def _bad_magic(raw):
    with open(f"{raw}/train-images-idx3-ubyte", "r+b") as f:
        f.write(b"\x00\x00\x00\x00")


def _images_dir(raw):  # a directory where the image file belongs
    os.remove(f"{raw}/train-images-idx3-ubyte")
    os.makedirs(f"{raw}/train-images-idx3-ubyte")


def _images_unreadable(raw):
    if os.geteuid() == 0:
        pytest.skip("root reads any file: permissions cannot make one unreadable")
    os.chmod(f"{raw}/train-images-idx3-ubyte", 0)


def _images_20x20(raw):  # a consistent IDX file, of another dataset's image size
    write_idx(f"{raw}/train-images-idx3-ubyte", np.zeros((400, 20, 20), np.uint8))


def _test_split_empty(raw):
    write_idx(f"{raw}/t10k-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(f"{raw}/t10k-labels-idx1-ubyte", np.zeros((0,), np.uint8))


def _bad_gz(raw):
    with open(f"{raw}/train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"not the archive torchvision knows")


def real_cifar_bitflip(tmp, stack):
    src = os.path.join(os.environ.get("MFBENCH_DATA", ""), "cifar-10-batches-py")
    if not os.path.isdir(src):
        pytest.skip("needs real CIFAR-10 under MFBENCH_DATA")
    dst = os.path.join(tmp, "data", "cifar-10-batches-py")
    os.makedirs(dst)
    for f in os.listdir(src):
        if f != "test_batch":
            os.symlink(os.path.join(src, f), os.path.join(dst, f))
    shutil.copyfile(os.path.join(src, "test_batch"), os.path.join(dst, "test_batch"))
    with open(os.path.join(dst, "test_batch"), "r+b") as f:
        f.seek(5000)
        b = f.read(1)
        f.seek(5000)
        f.write(bytes([b[0] ^ 0xFF]))


def mount_tmpfs(sub: str, opts: str):
    def setup(tmp, stack):
        d = os.path.join(tmp, sub)
        os.makedirs(d)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()}): needs root in a VM/container")
        stack.callback(subprocess.run, ["umount", "-l", d])
    return setup


def hold_lock(tmp, stack):
    fd = os.open(os.path.join(tmp, OUT + ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "another run" holds it
    stack.callback(os.close, fd)


def stale_tmp(tmp, stack):
    for name in (f".{OUT}.x1.tmp", f".{OUT}.ckpt.pt.x2.tmp", ".out.meta.json.x3.tmp"):
        open(os.path.join(tmp, name), "w").write("half a file")


def umask_022(tmp, stack):
    stack.callback(os.umask, os.umask(0o022))


def checkpoint(kind):
    def setup(tmp, stack):
        import torch

        p = os.path.join(tmp, OUT + ".ckpt.pt")
        if kind == "empty":
            open(p, "wb").close()
        elif kind == "truncated":
            torch.save({"rows": [], "rule": {"w": torch.zeros(4096)}}, p)
            os.truncate(p, os.path.getsize(p) // 2)
        else:  # a readable torch file that is not a checkpoint
            torch.save({"x": 1}, p)
    return setup


def mkdir(name):
    return lambda tmp, stack: os.makedirs(os.path.join(tmp, name))


def touch(name):
    return lambda tmp, stack: open(os.path.join(tmp, name), "w").close()


# --- checks -------------------------------------------------------------------------------------------
def diverged_recorded(tmp, output):
    raw = pd.read_csv(os.path.join(tmp, OUT), keep_default_na=False, dtype=str)
    assert (raw.value != "").all(), "NaN written as an empty cell"
    assert (raw.metric == "diverged").any(), "no `diverged` row in the run CSV"
    assert json.load(open(os.path.join(tmp, "out.meta.json")))["status"] == "diverged"
    from mfbench import aggregate

    assert pd.api.types.is_float_dtype(aggregate.read([os.path.join(tmp, OUT)]).value), "value column read as text"


def mode_644(tmp, output):
    for f in SUCCEEDED:
        assert os.stat(os.path.join(tmp, f)).st_mode & 0o777 == 0o644, f"{f} is not rw-r--r-- under umask 022"


def _table(name, per_lr=False):
    """The mf runs of seeds 0, 1 averaged, seed 2 (diverged) left out and named: in the table where
    its cell pools lr values (Table 3, 5), on stderr where lr separates curves (Fig. 4, 5)."""
    def check(tmp, output):
        t = pd.read_csv(os.path.join(tmp, name), keep_default_na=False)
        t = t[t.algorithm == "mf"]
        assert len(t) and (pd.to_numeric(t.n) == 2).all(), f"{name}: the diverged seed was averaged in"
        if per_lr:
            assert (pd.to_numeric(t.lr) < 1).all(), f"{name} has a curve of the diverged run"
            assert "mf lr=1000.0 seed 2" in output
        else:
            assert "diverged_seeds" in t and (t.diverged_seeds.astype(str) == "2").all(), f"{name} does not name it"
    return check


def chose_finite_lr(tmp, output):
    assert json.load(open(os.path.join(tmp, "choice.json")))["lr"] == 1e-3


def short(n_lines):
    def check(tmp, output):
        lines = [x for x in output.splitlines() if x.strip()]
        assert len(lines) <= n_lines, f"{len(lines)} lines of output for one config error"
    return check


def lr_is_number(tmp, output):
    assert '"lr": 0.01,' in output, "nested --config value not typed"


# --- run-CSV fixtures for the aggregation cases (made by the checkout under test) -----------------------
RUN = ["train", "--dataset", "synthetic-mnist", "--width", "16", "--epochs", "3", "--train-subset", "300",
       "--batch-size", "100", "--device", "cpu", "--experiment", "table3", "--val-fraction", "0.1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """bp and mf, seeds 0 and 1 fine, seed 2 diverged (SGD lr 1000); plus a tuning grid point that diverges."""
    d = tmp_path_factory.mktemp("runs")
    paths = {}
    for alg in ("bp", "mf"):
        for seed in (0, 1, 2):
            extra = ["--optimizer", "sgd", "--lr", "1000"] if seed == 2 else []
            p = str(d / f"{alg}{seed}.csv")
            inproc(RUN + ["--algorithm", alg, "--seed", str(seed), *extra, "--out", p], {})
            paths[f"{alg}{seed}"] = p
    return paths


def AGG(id, argv, check, **kw):
    return Case(id, argv, 0, "diverged", exist=(), absent=(), check=check, **kw)


ALL_RUNS = "{runs}"

CASES = [
    # diverged / non-finite
    T("diverged-sgd-lr1000", "--optimizer", "sgd", "--lr", "1000", "--epochs", "4", rc=0, msg="diverged",
      check=diverged_recorded),
    T("lr-inf", "--lr", "inf", msg="lr must be a finite number"),
    T("lr-nan", "--lr", "nan", msg="lr must be"),
    T("weight-decay-inf", "--weight-decay", "inf", msg="weight_decay must be a finite number"),
    T("ff-threshold-inf", "--algorithm", "ff", "--option", "threshold=inf", msg="threshold"),
    T("option-3e-2-is-a-number", "--algorithm", "ff", "--option", "peer_norm=3e-2", rc=0),
    T("option-bad-type", "--algorithm", "ff", "--option", "threshold=abc", msg="threshold must be float"),
    # --spec values
    T("spec-empty", "--spec", "", msg="--spec is not valid JSON"),
    T("spec-augment-text", "--spec", '{"augment": "false"}', msg="augment must be true or false"),
    T("spec-data-dir-int", "--spec", '{"data_dir": 5}', msg="data_dir must be a string"),
    T("spec-lr-text", "--spec", '{"lr": "0.01"}', msg="lr must be"),
    T("spec-lr-NaN", "--spec", '{"lr": NaN}', msg="lr must be"),
    T("spec-int-key-float", "--spec", '{"eval_every": 2.5}', msg="eval_every must be"),
    T("spec-not-object", "--spec", "[]", msg="must be a JSON object"),
    T("spec-unknown-key", "--spec", '{"epochz": 3}', msg="unknown run key(s) ['epochz']"),
    # ranges that used to be tracebacks
    T("seed-2**64", "--seed", str(2**64), msg="seed must be at most"),
    T("data-seed-2**64", "--data-seed", str(2**64), msg="data_seed must be at most"),
    T("seed-negative", "--seed", "-1", msg="seed must be a non-negative integer"),
    T("val-fraction-0.99995", "--val-fraction", "0.99995", msg="leaving none to train on"),
    T("val-fraction-1", "--val-fraction", "1", msg="val_fraction must be in [0, 1)"),
    T("huge-width", "--depth", "1", "--width", "1000000000", msg="reduce width"),
    # output paths, one writer per --out, leftovers, permissions, disk full
    Case("out-is-a-directory", TRAIN[:-1] + ["{tmp}/d.csv"], 2, "is a directory", exist=("d.csv",),
         absent=("d.csv.lock", "d.meta.json", "d.csv.ckpt.pt"), setup=mkdir("d.csv")),
    Case("out-parent-is-a-file", TRAIN[:-1] + ["{tmp}/f/out.csv"], 2, "is a file", exist=("f",),
         absent=("out.meta.json", "f.meta.json"), setup=touch("f")),
    Case("out-read-only", TRAIN[:-1] + ["{tmp}/ro/out.csv"], 2, "not writable",
         absent=("ro/out.csv", "ro/out.meta.json"), setup=mount_tmpfs("ro", "ro,size=1m")),
    T("out-not-csv", "--out", "{tmp}/out.txt", msg="--out must name a .csv file"),
    T("out-locked-by-another-run", rc=2, msg="being written by another run", exist=(OUT + ".lock",),
      absent=(OUT, "out.meta.json", OUT + ".ckpt.pt"), setup=hold_lock),
    T("locked-out-refused-before-the-data-load", "--dataset", "mnist", "--data-dir", "{tmp}/no-data", rc=2,
      msg="being written by another run", exist=(OUT + ".lock",), absent=(OUT, "out.meta.json"), setup=hold_lock),
    T("meta-path-is-a-directory", rc=2, msg="metadata path", exist=("out.meta.json",),
      absent=(OUT, OUT + ".lock", OUT + ".ckpt.pt"), setup=mkdir("out.meta.json")),
    T("out-name-too-long", "--out", "{tmp}/" + "n" * 250 + ".csv", msg="too long", absent=("n*",)),
    T("stale-tmp-files-cleaned", rc=0, setup=stale_tmp),
    T("files-respect-umask", rc=0, setup=umask_022, check=mode_644),
    Case("disk-full", TRAIN[:-1] + ["{tmp}/full/out.csv"], 2, "no space left",
         absent=("full/out.csv", "full/out.meta.json", "full/.*.tmp"), setup=mount_tmpfs("full", "size=64k")),
    # damaged checkpoints: reported, set aside, start over
    T("checkpoint-truncated", rc=0, msg="damaged", exist=(*SUCCEEDED, OUT + ".ckpt.pt.damaged-*"),
      setup=checkpoint("truncated")),
    T("checkpoint-empty", rc=0, msg="damaged", exist=(*SUCCEEDED, OUT + ".ckpt.pt.damaged-*"),
      setup=checkpoint("empty")),
    T("checkpoint-not-a-checkpoint", rc=0, msg="damaged", exist=(*SUCCEEDED, OUT + ".ckpt.pt.damaged-*"),
      setup=checkpoint("other")),
    # data files
    T("mnist-tiny-ok", "--dataset", "mnist", "--data-dir", "{tmp}/data", rc=0, setup=damage(lambda raw: None)),
    T("label-byte-255", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="out of range",
      setup=damage(_label_255)),
    T("label-file-for-half-the-images", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="400 images but 150 labels",
      setup=damage(_labels_half)),
    T("label-file-truncated", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="truncated",
      setup=damage(_labels_truncated)),
    T("idx-bad-header", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="bad IDX header",
      setup=damage(_bad_magic)),
    T("mnist-archive-checksum", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="checksum mismatch",
      setup=damage(_bad_gz)),
    T("data-file-is-a-directory", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="is a directory",
      setup=damage(_images_dir)),
    T("data-file-unreadable", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="cannot read it",
      setup=damage(_images_unreadable)),
    T("data-images-of-another-size", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="expected 1x28x28",
      setup=damage(_images_20x20)),
    T("data-test-split-empty", "--dataset", "mnist", "--data-dir", "{tmp}/data", msg="test split",
      setup=damage(_test_split_empty)),
    T("train-subset-larger-than-the-data", "--train-subset", "100000", msg="train_subset 100000 is larger than"),
    T("cifar-bit-flip-checksum", "--dataset", "cifar10", "--data-dir", "{tmp}/data", msg="cifar",
      setup=real_cifar_bitflip),
    # precedence: --data-dir flag > env MFBENCH_DATA > spec / config file
    T("data-dir-flag-beats-env", "--dataset", "mnist", "--data-dir", "{tmp}/data", rc=0,
      setup=damage(lambda raw: None), env={"MFBENCH_DATA": "/nonexistent"}),
    T("env-beats-spec-data-dir", "--dataset", "mnist", "--spec", '{"data_dir": "/nonexistent"}', rc=0,
      setup=damage(lambda raw: None), env={"MFBENCH_DATA": "{tmp}/data"}),
    # signals: one line, the documented status, the checkpoint kept
    T("ctrl-c", "--epochs", "500", "--train-subset", "2000", rc=130, msg="interrupted", exist=(OUT + ".ckpt.pt",),
      how="sigint"),
    T("sigterm", "--epochs", "500", "--train-subset", "2000", rc=143, msg="terminated", exist=(OUT + ".ckpt.pt",),
      how="sigterm"),
    T("ctrl-c-twice", "--epochs", "500", "--train-subset", "2000", rc=130, msg="interrupted", exist=(),
      absent=(OUT, "out.meta.json"), how="sigint2"),
    Case("out-dir-vanishes-mid-run", TRAIN[:-1] + ["{tmp}/sub/out.csv", "--epochs", "500", "--train-subset", "2000"],
         2, "vanished", exist=(), absent=("sub",), how="vanish"),
    # aggregation over a diverged run: left out, and said so
    AGG("table3-leaves-diverged-out", ["table3", ALL_RUNS, "--out", "{tmp}/t3.csv", "--figure", "{tmp}/t3.png"],
        _table("t3.csv")),
    AGG("table5-leaves-diverged-out", ["table5", ALL_RUNS, "--skip-epochs", "1", "--out", "{tmp}/t5.csv",
                                       "--figure", "{tmp}/t5.png"], _table("t5.csv")),
    AGG("fig4-summary-leaves-diverged-out", ["fig4-summary", ALL_RUNS, "--out", "{tmp}/f4.csv"], _table("f4.csv", True)),
    AGG("fig5-summary-leaves-diverged-out",
        ["fig5-summary", ALL_RUNS, "--target", "synthetic-mnist=0.3", "--out", "{tmp}/f5.csv",
         "--target-out", "{tmp}/f5t.csv", "--target-runs-out", "{tmp}/f5r.csv"], _table("f5.csv", True)),
    AGG("tune-select-skips-diverged-point", ["tune-select", "{run:mf0}", "{run:mf2}", "--primary-mode", "ff",
                                                  "--out", "{tmp}/choice.json"],
        chose_finite_lr),
    # the workflow: config errors before any job, in one short line naming the key
    Case("wf-dataset-typo", ["table3: {datasets: [mnsit]}"], 1, "table3.datasets[0]: 'mnsit' is not one of",
         exist=(), absent=(), check=short(8), how="snakemake"),
    Case("wf-unknown-algorithm", ["fig4: {algorithms: [bp, mff]}"], 1, "fig4.algorithms[1]: 'mff'",
         exist=(), absent=(), check=short(8), how="snakemake"),
    Case("wf-unknown-rule-option", ["options: {mf: {m_inti: normal}}"], 1, "'m_inti' was unexpected",
         exist=(), absent=(), check=short(8), how="snakemake"),
    Case("wf-unknown-key", ["tabel3: {}"], 1, "'tabel3' was unexpected", exist=(), absent=(), check=short(8),
         how="snakemake"),
    Case("wf-nested-config-typed", ["", "--config", "run={lr: 0.01}"], 0, "", exist=(), absent=(),
         check=lr_is_number, how="snakemake"),
    Case("wf-data-dir-with-apostrophe", ["", "--config", "data_dir={tmp}/it's data", "--cores", "1"], 0, "",
         exist=("results/smoke/table3/synthetic-mnist/mlp/bp/seed0.csv",), absent=(), how="snakemake"),
    Case("wf-killed-then-same-command", [], 0, "", exist=("results/smoke/table3/synthetic-mnist/mlp/mf/seed0.csv",),
         absent=(), how="killed-workflow"),
    Case("wf-sigterm-then-same-command-at-once", [], 0, "resuming",
         exist=("results/smoke/table3/synthetic-mnist/mlp/mf/seed0.csv",), absent=(), how="sigterm-workflow"),
]


# --- runners ------------------------------------------------------------------------------------------
def inproc(argv: list[str], env: dict) -> tuple[int | str, str]:
    """mfbench.cli.main in this process (no torch import per case); a traceback counts as rc 'traceback'."""
    from results_fixtures import run_cli

    old = {k: os.environ.get(k) for k in (*env, "MFBENCH_DATA")}
    os.environ.pop("MFBENCH_DATA", None)
    os.environ.update(env)
    try:
        return run_cli(argv)
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MFBENCH_DATA"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return {**env, **extra}


def signalled(argv: list[str], env: dict, sig: int, tmp: str, *, again: bool = False,
              vanish: str = "") -> tuple[int | str, str]:
    """Start a run, wait for its first checkpoint, then send `sig` (twice, 50 ms apart: `again`),
    or remove its output directory (`vanish`)."""
    p = subprocess.Popen([sys.executable, "-m", "mfbench.cli", *argv], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=_env(env))
    ckpt = os.path.join(tmp, vanish, OUT + ".ckpt.pt")
    deadline = time.time() + 180
    while not os.path.exists(ckpt) and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    if vanish:
        shutil.rmtree(os.path.join(tmp, vanish))
    else:
        p.send_signal(sig)
        if again:
            time.sleep(0.05)
            if p.poll() is None:
                p.send_signal(sig)
    out, err = p.communicate(timeout=240)
    return p.returncode, out + err


def workflow_dir(tmp: str) -> None:
    """A scratch working directory that sees the checkout's Snakefile and workflow/ (outputs stay in tmp)."""
    for name in ("Snakefile", "workflow"):
        os.symlink(os.path.join(ROOT, name), os.path.join(tmp, name))


def snakemake(argv: list[str], tmp: str) -> tuple[int, str]:
    overlay, *args = argv
    workflow_dir(tmp)
    files = ["workflow/config/smoke.yaml"]
    if overlay:
        open(os.path.join(tmp, "overlay.yaml"), "w").write(overlay + "\n")
        files.append("overlay.yaml")
    target = "results/smoke/table3/synthetic-mnist/mlp/bp/seed0.csv"
    dry = [] if "--cores" in args else ["-n", "-p", "--cores", "1"]
    r = subprocess.run([sys.executable, "-m", "snakemake", *dry, target, *args, "--configfile", *files], cwd=tmp,
                       capture_output=True, text=True, env=_env({}), timeout=600)
    return r.returncode, r.stdout + r.stderr


def killed_workflow(tmp: str, sig: int = signal.SIGKILL) -> tuple[int, str]:
    """README: a killed workflow resumes with the same command (SIGKILL of Snakemake and its job), and
    so does one whose controller alone got SIGTERM, started again at once (no --unlock)."""
    workflow_dir(tmp)
    open(os.path.join(tmp, "long.yaml"), "w").write("table3: {run: {epochs: 40}}\n")
    out = "results/smoke/table3/synthetic-mnist/mlp/mf/seed0.csv"
    cmd = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/smoke", out,
           "--configfile", "workflow/config/smoke.yaml", "long.yaml"]
    log = open(os.path.join(tmp, "first.log"), "w")  # a file, not a pipe: nothing blocks the first run
    p = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=_env({}), start_new_session=True)
    deadline = time.time() + 300
    while not glob.glob(os.path.join(tmp, out) + ".ckpt.pt") and time.time() < deadline:
        time.sleep(0.2)
    if sig == signal.SIGKILL:
        os.killpg(p.pid, signal.SIGKILL)  # the group this test started: Snakemake and its job
        p.wait()
    else:  # the controller only, as `kill PID` or a scheduler's time limit would; the same command at once
        p.send_signal(sig)
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=_env({}), timeout=600)
        p.wait(timeout=300)
        first = open(os.path.join(tmp, "first.log")).read()
        assert "mfbench stopped by SIGTERM" in first and "mfbench FAILED" not in first, first[-3000:]
        return r.returncode, r.stdout + r.stderr
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=_env({}), timeout=600)
    return r.returncode, r.stdout + r.stderr


def fill(argv: list[str], tmp: str, runs: dict | None) -> list[str]:
    out = []
    for a in argv:
        if a == ALL_RUNS:
            out += list(runs.values())
        elif a.startswith("{run:"):
            out.append(runs[a[5:-1]])
        else:
            out.append(a.replace("{tmp}", tmp))
    return out


def needs_runs(case: Case) -> bool:
    return any(a == ALL_RUNS or a.startswith("{run:") for a in case.argv)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, tmp_path, request):
    tmp = str(tmp_path)
    runs = request.getfixturevalue("runs") if needs_runs(case) else None
    with contextlib.ExitStack() as stack:
        if case.setup:
            case.setup(tmp, stack)
        argv = fill(case.argv, tmp, runs)
        env = {k: v.replace("{tmp}", tmp) for k, v in case.env.items()}
        if case.how == "inproc":
            rc, output = inproc(argv, env)
        elif case.how in ("sigint", "sigterm", "sigint2"):
            rc, output = signalled(argv, env, signal.SIGTERM if case.how == "sigterm" else signal.SIGINT, tmp,
                                   again=case.how == "sigint2")
        elif case.how == "vanish":
            rc, output = signalled(argv, env, 0, tmp, vanish="sub")
        elif case.how == "snakemake":
            rc, output = snakemake(argv, tmp)
        elif case.how == "sigterm-workflow":
            rc, output = killed_workflow(tmp, signal.SIGTERM)
        else:
            rc, output = killed_workflow(tmp)
        tail = output[-2500:]
        assert rc == case.rc, f"exit status {rc}, expected {case.rc}:\n{tail}"
        assert case.msg in output, f"message {case.msg!r} missing:\n{tail}"
        assert "Traceback" not in output, tail
        if case.rc:
            errors = [x for x in output.splitlines() if x.startswith("mfbench: error:")]
            assert case.how != "inproc" or len(errors) == 1, f"not one error line:\n{tail}"
        exist = case.exist if case.exist is not None else (SUCCEEDED if case.rc == 0 else ())
        absent = case.absent if case.absent is not None else (CLEAN_AFTER_SUCCESS if case.rc == 0
                                                               else FAILED_LEAVES_NOTHING)
        for g in exist:
            assert glob.glob(os.path.join(tmp, g)), f"{g} should exist; have {sorted(os.listdir(tmp))}"
        for g in absent:
            assert not glob.glob(os.path.join(tmp, g), include_hidden=True), f"{g} should not exist"
        if case.check:
            case.check(tmp, output)


def test_schema_names_match_the_registries():
    """The workflow schema rejects unknown datasets, rules and rule options at parse time without
    importing torch, so it lists them; this keeps the lists equal to mfbench's registries."""
    import yaml

    from mfbench.algorithms import RULES
    from mfbench.data import DATASETS

    d = yaml.safe_load(open(os.path.join(ROOT, "workflow/schemas/config.schema.yaml")))["$defs"]
    where = "workflow/schemas/config.schema.yaml $defs"
    assert sorted(d["dataset"]["enum"]) == sorted(DATASETS), f"{where}.dataset.enum must list {sorted(DATASETS)}"
    assert sorted(d["algorithm"]["enum"]) == sorted(RULES), f"{where}.algorithm.enum must list {sorted(RULES)}"
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    for name, rule in RULES.items():
        props = d["rule_options"]["properties"].get(name, {}).get("properties", {})
        assert set(props) == set(rule.options), f"{where}.rule_options.{name} must list {sorted(rule.options)}"
        for k, o in rule.options.items():
            want = {"enum": list(o.choices)} if o.choices is not None else {"type": kinds[type(o.default)]}
            got = {x: props[k][x] for x in ("enum", "type") if x in props[k]}
            assert got == want, f"{where}.rule_options.{name}.{k}: {got} should be {want}"
