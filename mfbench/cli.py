"""`mfbench` console script: every Snakemake job is one of these commands."""
from __future__ import annotations

import argparse
import signal
import sys

from mfbench.config import ConfigError, RunConfig, parse_scalar, spec_dict, with_env

# flag -> RunConfig key; flags left unset keep the spec's (or the default) value
_TRAIN_FLAGS: list[tuple[str, type, str]] = [
    ("algorithm", str, "learning rule"), ("dataset", str, "dataset name"),
    ("data-dir", str, "torchvision data root (wins over env MFBENCH_DATA, which wins over --spec)"),
    ("arch", str, "model family (see `mfbench options`)"),
    ("depth", int, "MLP hidden layers (LocalMixer: blocks)"), ("width", int, "MLP layer width (LocalMixer: channels)"),
    ("patches", int, "LocalMixer patches per image side"), ("groups", int, "LocalMixer channel groups"),
    ("init", str, "hidden layers' init: default (PyTorch's) or he (kaiming_normal_, biases 0)"),
    ("input-norm", str, "standardize (train mean/std) or none (raw pixels in [0, 1])"),
    ("epochs", int, "epochs (per layer for greedy schedules)"), ("batch-size", int, "training batch size"),
    ("eval-batch-size", int, "evaluation batch size"), ("lr", float, "learning rate"),
    ("optimizer", str, "adam, adamw or sgd"), ("weight-decay", float, "weight decay"),
    ("schedule", str, "simultaneous or greedy"), ("seed", int, "run seed (init, shuffling)"),
    ("data-seed", int, "seed of the validation split / synthetic data"),
    ("val-fraction", float, "fraction of train held out for validation"),
    ("eval-every", int, "evaluate every N epochs of a phase (and at its last epoch)"),
    ("train-subset", int, "keep this many training examples (0 = all)"),
    ("device", str, "auto, cpu or cuda"), ("experiment", str, "experiment label written to the CSV"),
]


def _parse_kv(items: list[str], what: str) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"{what} {it!r} must look like KEY=VALUE")
        k, v = it.split("=", 1)
        out[k] = parse_scalar(v)
    return out


def run_config(args: argparse.Namespace) -> RunConfig:
    spec = spec_dict(args.spec) if args.spec is not None else {}  # --spec '' is an error, not "no spec"
    for path in args.spec_file or []:  # e.g. the tuned protocol's chosen lr / weight decay; flags still win
        try:
            with open(path) as f:
                spec.update(spec_dict(f.read(), f"--spec-file {path}"))
        except OSError as e:
            raise ConfigError(f"--spec-file {path}: {e.strerror}") from None
    spec = with_env(spec)  # env MFBENCH_DATA beats the spec's data_dir; the --data-dir flag beats both
    for flag, _, _ in _TRAIN_FLAGS:
        key = flag.replace("-", "_")
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.channels is not None:
        spec["channels"] = args.channels
    for flag in ("augment", "eval_train", "download"):
        if getattr(args, flag):
            spec[flag] = True
    if args.option:
        spec["options"] = {**spec.get("options", {}), **_parse_kv(args.option, "--option")}
    return RunConfig.from_dict(spec)


def _cmd_train(args: argparse.Namespace) -> None:
    from mfbench.run import train

    if not args.out.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {args.out!r}")
    cfg = run_config(args)
    old = signal.signal(signal.SIGTERM, _terminated)  # Snakemake/SLURM stop jobs with SIGTERM: unwind, keep the checkpoint
    try:
        train(cfg, args.out)
    finally:
        signal.signal(signal.SIGTERM, old)


class Terminated(KeyboardInterrupt):
    pass


def _terminated(signum, frame):
    raise Terminated


def _cmd_options(args: argparse.Namespace) -> None:
    from mfbench.algorithms import RULES

    for name, rule in sorted(RULES.items()):
        print(f"{name}: pred_modes={','.join(rule.pred_modes)} schedules={','.join(rule.schedules)}")
        for k, o in rule.options.items():
            print(f"  {k} = {o.default!r}  # {o.why}" + (f" (choices: {', '.join(map(str, o.choices))})" if o.choices else ""))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mfbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one rule on one dataset, write a tidy CSV + metadata JSON")
    for flag, typ, helptext in _TRAIN_FLAGS:
        t.add_argument(f"--{flag}", type=typ, default=None, help=helptext)
    t.add_argument("--channels", type=int, nargs="+", default=None, help="CNN channels per conv layer")
    t.add_argument("--augment", action="store_true", help="random crop + flip on the device (CIFAR)")
    t.add_argument("--eval-train", action="store_true", help="also report accuracy on the training split")
    t.add_argument("--download", action="store_true", help="allow torchvision to download missing data")
    t.add_argument("--option", action="append", metavar="KEY=VALUE", help="rule option (see `mfbench options`)")
    t.add_argument("--spec", default=None, help="JSON object of run keys; explicit flags override it")
    t.add_argument("--spec-file", action="append", metavar="JSON_FILE",
                   help="JSON object of run keys applied over --spec (repeatable); explicit flags override it")
    t.add_argument("--out", required=True, help="output CSV (metadata JSON is written beside it)")
    t.set_defaults(func=_cmd_train)

    o = sub.add_parser("options", help="list learning rules, their prediction modes and options")
    o.set_defaults(func=_cmd_options)

    from mfbench import experiments

    for mod in experiments.modules():
        mod.add_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as e:
        print(f"mfbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # one line; a killed run resumes from its checkpoint with the same command
        print(f"mfbench: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; "
              "run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
