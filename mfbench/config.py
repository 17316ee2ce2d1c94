"""One run's configuration: what `mfbench train` and every Snakemake job resolve to.

Validation lives here so the CLI, the workflow and the tests reject bad input the
same way: a `ConfigError` naming the bad value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any


from mfbench.errors import ConfigError  # noqa: F401 (re-exported: config.ConfigError is the name most code knows)


ARCHS = ("mlp", "cnn", "localmixer", "mixer", "resnet18", "mobilenet_v3_small", "mobilenet_v3_large")
STEMS = ("cifar", "torchvision")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "linear", "cosine")  # per epoch of a phase: linear decays to zero, cosine to zero
SCHEDULES = ("simultaneous", "greedy")
SELECTIONS = ("last", "best_val")
# transfer (init_from): `all` = the rule trains every layer of the loaded net (SFF with SFF, BP with BP);
# `head` = only the rule's own readout (BP's linear head, SFF's auxiliary convs) on the frozen net
TRANSFER_TRAIN = ("all", "head")
PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
MAX_SEED = 2**63 - 1  # torch seeds are 64-bit and CSV readers parse int64


@dataclass
class RunConfig:
    algorithm: str = "mf"
    dataset: str = "synthetic-mnist"
    data_dir: str = field(default_factory=lambda: os.environ.get("MFBENCH_DATA") or "data")  # env beats the default
    download: bool = False
    arch: str = "mlp"
    depth: int = 2
    width: int = 1000
    channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    init: str = "default"  # hidden layers' init (heads and projections keep their rule's own)
    input_norm: str = "standardize"
    patches: int = 1  # LocalMixer: patches per image side (depth = blocks, width = channels)
    groups: int = 1  # LocalMixer: channel groups
    # MLP-Mixer (arch mixer; depth = blocks, width = hidden dim): square patches of this side, token/channel MLP widths
    patch_size: int = 4
    token_mlp_dim: int = 64
    channel_mlp_dim: int = 512
    # torchvision archs: 32x32 adaptation of the stem (cifar: 3x3 stride 1, no max-pool) or torchvision's own
    stem: str = "cifar"
    width_mult: float = 1.0  # MobileNetV3's channel multiplier (torchvision's width_mult)
    epochs: int = 3
    batch_size: int = 128
    eval_batch_size: int = 4096
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only (the tuned protocol searches it for SGD rules)
    lr_schedule: str = "constant"  # lr factor per epoch of a phase: constant, linear (to zero) or cosine (to zero)
    schedule: str = "simultaneous"
    seed: int = 0
    data_seed: int = 0
    val_fraction: float = 0.1
    train_subset: int = 0
    # keep only these classes, relabelled 0..k-1 in this order ([] = all): a transfer task's label set
    classes: list[int] = field(default_factory=list)
    # transfer: the net's layers start from this finished run's weights (`save_weights`); the rule's own
    # readout (BP's head, SFF's auxiliary convs) starts fresh from `seed`, as the classes are new
    init_from: str = ""
    transfer_train: str = "all"  # with init_from: which parameters the rule trains (TRANSFER_TRAIN)
    save_weights: bool = False  # write the finished rule's weights beside the CSV (<out>.weights.pt): a pretrain run
    augment: bool = False
    eval_train: bool = False
    eval_every: int = 1  # evaluate every N epochs of a phase (and always at its last)
    patience: int = 0  # early stopping: end a phase after this many evaluations without a better val accuracy (0 = off)
    stop_mode: str = ""  # the prediction mode early stopping watches ("" = the best of all modes); the tuned protocol sets the rule's primary one
    device: str = "auto"
    # Speed, declared (mfbench.accel): none changes the maths except precision tf32/bf16.
    fused_optimizer: bool = True  # fused optimizer kernels on CUDA; the CPU keeps torch's default
    precision: str = "fp32"  # fp32 (no TF32 even where cuDNN would allow it), tf32, or bf16 autocast of the step
    compile: str = "off"  # torch.compile the training step in this mode (reduce-overhead: CUDA graphs)
    # Train this many seeds of the cell as one stacked model (algorithms.stacking; 1 = each alone). Same maths
    # per seed, float rounding apart; `mfbench train --seeds` groups its seeds so, the workflow one job per group.
    seed_stack: int = 1
    experiment: str = "train"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown run key(s) {unknown}; allowed: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    @classmethod
    def from_json(cls, text: str, flag: str = "--spec") -> "RunConfig":
        return cls.from_dict(with_env(spec_dict(text, flag)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved_data_dir(self) -> str:
        # Precedence (flag > env MFBENCH_DATA > config file) is applied where specs are parsed:
        # `with_env` for specs, then the CLI's explicit flags.
        return self.data_dir

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA device is available; use --device cpu or auto")
        return self.device

    def validate(self) -> None:
        # A run names a rule, a dataset and an init: config sits above their registries (never below).
        from mfbench.algorithms import RULES
        from mfbench.data import DATASETS, INPUT_NORMS
        from mfbench.models import INITS

        self._check_types()
        _choice("algorithm", self.algorithm, sorted(RULES))
        _choice("dataset", self.dataset, sorted(DATASETS))
        _choice("arch", self.arch, ARCHS)
        _choice("stem", self.stem, STEMS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("compile", self.compile, COMPILE_MODES)
        _choice("transfer_train", self.transfer_train, TRANSFER_TRAIN)
        if self.transfer_train == "head" and not self.init_from:
            raise ConfigError("transfer_train 'head' freezes the net, but init_from is empty (a random net); "
                              "give init_from (a pretrain run's weights) or transfer_train 'all'")
        if not (isinstance(self.classes, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                       for c in self.classes)
                and len(set(self.classes)) == len(self.classes) and len(self.classes) != 1):
            raise ConfigError(f"classes must be a list of distinct class indices (at least 2; [] = all), "
                              f"got {self.classes!r}")
        if self.init_from and self.seed_stack > 1:
            raise ConfigError(f"seed_stack={self.seed_stack} with init_from: each seed loads its own pretrain "
                              "run's weights; allowed: seed_stack 1")
        if not isinstance(self.fused_optimizer, bool):
            raise ConfigError(f"fused_optimizer must be true or false, got {self.fused_optimizer!r}")
        _choice("init", self.init, INITS)
        _choice("input_norm", self.input_norm, INPUT_NORMS)
        for name in ("depth", "width", "epochs", "batch_size", "eval_batch_size", "eval_every", "patches", "groups",
                     "patch_size", "token_mlp_dim", "channel_mlp_dim"):
            _positive_int(name, getattr(self, name))
        for name in ("seed", "data_seed", "train_subset", "patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
        for name in ("seed", "data_seed"):
            if getattr(self, name) > MAX_SEED:
                raise ConfigError(f"{name} must be at most 2**63-1 = {MAX_SEED}, got {getattr(self, name)}")
        if not isinstance(self.channels, list) or not self.channels:
            raise ConfigError(f"channels must be a non-empty list of positive integers, got {self.channels!r}")
        for c in self.channels:
            _positive_int("channels entry", c)
        if self.arch == "localmixer" and self.width % self.groups:
            raise ConfigError(f"groups={self.groups} must divide width={self.width} (LocalMixer channel groups)")
        if not (isinstance(self.width_mult, (int, float)) and not isinstance(self.width_mult, bool)
                and self.width_mult > 0):
            raise ConfigError(f"width_mult must be a positive number, got {self.width_mult!r}")
        if self.width_mult != 1.0 and not self.arch.startswith("mobilenet"):
            raise ConfigError(f"width_mult={self.width_mult!r} applies to mobilenet_v3_* only (torchvision has no "
                              f"multiplier for {self.arch!r}); allowed for it: 1.0")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.patience and not self.val_fraction:
            raise ConfigError(f"patience={self.patience} stops early on validation accuracy, but val_fraction is 0: "
                              "give a val_fraction > 0 or patience 0")
        if not isinstance(self.options, dict):
            raise ConfigError(f"options must be a mapping of rule option -> value, got {self.options!r}")
        RULES[self.algorithm].resolve_options(self.options)
        if self.stop_mode and self.stop_mode not in RULES[self.algorithm].pred_modes:
            raise ConfigError(f"unknown stop_mode {self.stop_mode!r} for algorithm {self.algorithm!r}; "
                              f"allowed: {', '.join(RULES[self.algorithm].pred_modes)}")
        if self.seed_stack < 1:
            raise ConfigError(f"seed_stack must be an integer >= 1 (1: each seed alone), got {self.seed_stack!r}")
        if self.seed_stack > 1 and self.lr_schedule != "constant":  # the stack's one optimizer keeps its lr
            raise ConfigError(f"seed_stack={self.seed_stack} with lr_schedule {self.lr_schedule!r}: a stacked run "
                              "keeps a constant learning rate; allowed: lr_schedule constant, or seed_stack 1")
        if self.seed_stack > 1:
            why = RULES[self.algorithm].stack_refusal(self)
            if why:
                stackable = sorted(n for n, r in RULES.items() if r.stackable)
                raise ConfigError(f"seed_stack={self.seed_stack}: {why}; seed_stack > 1 is allowed for "
                                  f"{', '.join(stackable)} on arch mlp at their default options, else use 1")

    def _check_types(self) -> None:
        """Each key has its field's type (JSON specs carry any type: "augment": "false" is not false)."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            ok, kind = {
                "bool": (isinstance(v, bool), "true or false"),
                "str": (isinstance(v, str), "a string"),
                "int": (isinstance(v, int) and not isinstance(v, bool), "an integer"),
                "float": (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                          "a finite number"),
            }.get(f.type, (True, ""))
            if not ok:
                raise ConfigError(f"{f.name} must be {kind}, got {v!r}")


def with_env(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec (config-file level) with env MFBENCH_DATA applied over its data_dir; explicit
    command-line flags are applied after this and win."""
    env = os.environ.get("MFBENCH_DATA")
    return {**spec, "data_dir": env} if env else spec


def parse_scalar(text: str) -> Any:
    """A KEY=VALUE value from the command line or `snakemake --config`: YAML (true, null, [1, 2]),
    except that numbers YAML 1.1 reads as text (3e-2, 1e3) are numbers."""
    import yaml

    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse value {text!r}: {str(e).splitlines()[0]}") from None
    if isinstance(v, str):
        for conv in (int, float):
            try:
                return conv(v)
            except ValueError:
                pass
    return v


def spec_dict(text: str, flag: str = "--spec") -> dict[str, Any]:
    """A JSON run spec (what Snakemake jobs pass) as a dict, or a ConfigError naming the flag."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{flag} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{flag} must be a JSON object of run keys, got {text!r}")
    return d


def _choice(name: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
