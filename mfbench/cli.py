"""`mfbench` console script: every Snakemake job is one of these commands.

Start-up is kept cheap: this module imports neither torch nor pandas, and of the
experiment modules only the one that defines the command being run is imported.
"""
from __future__ import annotations

import argparse
import importlib
import os
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
    ("stem", str, "torchvision archs: cifar (32x32 adaptation) or torchvision (unmodified)"),
    ("width-mult", float, "mobilenet_v3_*: channel multiplier"),
    ("epochs", int, "epochs (per layer for greedy schedules)"), ("batch-size", int, "training batch size"),
    ("eval-batch-size", int, "evaluation batch size"), ("lr", float, "learning rate"),
    ("optimizer", str, "adam, adamw or sgd"), ("weight-decay", float, "weight decay"),
    ("schedule", str, "simultaneous or greedy"), ("seed", int, "run seed (init, shuffling)"),
    ("data-seed", int, "seed of the validation split / synthetic data"),
    ("val-fraction", float, "fraction of train held out for validation"),
    ("eval-every", int, "evaluate every N epochs of a phase (and at its last epoch)"),
    ("train-subset", int, "keep this many training examples (0 = all)"),
    ("device", str, "auto, cpu or cuda"), ("experiment", str, "experiment label written to the CSV"),
    ("precision", str, "fp32 (default), tf32 or bf16: declared numeric precision of the training step"),
    ("compile", str, "off (default), default, reduce-overhead or max-autotune: torch.compile the training step"),
    ("seed-stack", int, "with --seeds: train this many seeds at a time as one stacked model (1 = each alone)"),
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
    from mfbench import files
    from mfbench.run import load_data, train, train_stacked

    if not args.out.endswith(".csv"):
        raise ConfigError(f"--out must name a .csv file, got {args.out!r}")
    cfg = run_config(args)
    runs = [(cfg, args.out)]
    if args.seeds is not None:  # one process, data loaded once: start-up is paid once, not per seed
        if args.seed is not None or "{seed}" not in args.out:
            raise ConfigError(f"--seeds needs '{{seed}}' in --out and no --seed, got --out {args.out!r}")
        runs = [(RunConfig.from_dict({**cfg.to_dict(), "seed": s}), args.out.replace("{seed}", str(s)))
                for s in args.seeds]
        for _, out in runs:  # as each run's own guard would, but before the shared data load
            files.check_writable(out)
    for _, out in runs:  # a run another process is writing is refused now, not after the data load
        files.check_unlocked(out)
    k = cfg.seed_stack
    if k > len(runs):
        raise ConfigError(f"seed_stack={k} is more than the {len(runs)} seed(s) given; allowed: 1 to {len(runs)} "
                          f"(give the cell's seeds with --seeds)")
    splits = None  # Snakemake/SLURM stop jobs with SIGTERM: `main` unwinds it like Ctrl-C, the checkpoint kept
    for i in range(0, len(runs), k):  # each seed: its own init, batch order, CSV and checkpoint
        group = runs[i:i + k]
        splits = splits or load_data(group[0][0], group[0][0].resolved_device())
        if len(group) > 1:  # seed_stack: trained as one stacked model
            train_stacked([c for c, _ in group], [o for _, o in group], splits=splits)
        else:
            train(group[0][0], group[0][1], splits=splits)


class Terminated(KeyboardInterrupt):
    pass


def _cmd_options(args: argparse.Namespace) -> None:
    from mfbench.algorithms import RULES

    for name, rule in sorted(RULES.items()):
        print(f"{name}: pred_modes={','.join(rule.pred_modes)} schedules={','.join(rule.schedules)}")
        for k, o in rule.options.items():
            print(f"  {k} = {o.default!r}  # {o.why}" + (f" (choices: {', '.join(map(str, o.choices))})" if o.choices else ""))


class Parser(argparse.ArgumentParser):
    """argparse, its refusals in one line like every other (it would print the usage first)."""

    def error(self, message: str):
        cmd = self.prog.removeprefix("mfbench").strip()
        self.exit(2, f"mfbench: error: {cmd + ': ' if cmd else ''}{message} (see `{self.prog} --help`)\n")


# Commands that read results and write summaries, tables or figures: their outputs are checked
# before any work, never one of their inputs, and written all or none (`files.all_or_none`).
RESULT_COMMANDS = {"table3", "table4", "table5", "fig4-summary", "fig5-summary", "fig4-figure", "fig5-figure",
                   "tune-select", "table-html", "claims-judge", "controls-summary", "fg-table", "fg-cosine",
                   "sff-table", "ff-hinton", "ff-study", "memory-slopes", "memory-plot-trace", "memory-plot-depth"}
OUTPUT_ARGS = ("out", "figure", "cost_figure", "target_out", "target_runs_out", "report", "html")
INPUT_ARGS = ("inputs", "csvs", "evidence", "summary", "targets", "ledger", "slopes", "speed", "bench")


def _paths(args: argparse.Namespace, names) -> list[tuple[str, str]]:
    out = []
    for n in names:
        v = getattr(args, n, None)
        for p in ([v] if isinstance(v, str) else v or []):
            out.append((f"--{n.replace('_', '-')}" if n in OUTPUT_ARGS else n, p))
    return out


def outputs_and_inputs(args: argparse.Namespace) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """A result command's (flag, output) pairs (a figure's PDF beside its PNG) and every file it
    reads (a run CSV's metadata JSON too)."""
    from mfbench.files import meta_path

    outs = []
    for flag, p in _paths(args, OUTPUT_ARGS):
        outs.append((flag, p))
        if p.endswith(".png"):
            outs.append((flag, p.removesuffix(".png") + ".pdf"))
    ins = [p for _, p in _paths(args, INPUT_ARGS)]
    return outs, tuple(ins + [meta_path(p) for p in ins])


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser of the command named in `argv`; every other experiment command is
    listed (name and help) without importing its module. argv=None: build every command."""
    p = Parser(prog="mfbench", description=__doc__.splitlines()[0])
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
    t.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="train these seeds one after another in this one process (start-up and data loading "
                        "paid once); --out names each seed's CSV with {seed}")
    t.set_defaults(func=_cmd_train)

    o = sub.add_parser("options", help="list learning rules, their prediction modes and options")
    o.set_defaults(func=_cmd_options)

    from mfbench import experiments

    # The top-level parser has no options taking a value: the first word is the command.
    word = None if argv is None else next((a for a in argv if not a.startswith("-")), None)
    if word in sub.choices:
        return p  # train / options: nothing else need be listed
    cmds = experiments.commands()
    wanted = list(cmds) if argv is None else [word]
    for mod in dict.fromkeys(cmds[c][0] for c in wanted if c in cmds):
        importlib.import_module(mod).add_command(sub)
    from mfbench import argtypes

    for name, cmd in sub.choices.items():
        if name in RESULT_COMMANDS:
            argtypes.apply(cmd)  # every numeric option's declared range
    for name, (_, helptext) in cmds.items():
        if name not in sub.choices:
            sub.add_parser(name, help=helptext)  # listed in --help; its module loads when it is run
    return p


def _stop(signum, frame):
    """The first Ctrl-C / SIGTERM unwinds (checkpoint kept, outputs all or none); a second one while
    that shutdown runs ends the process at once, in one line (temp files a killed write leaves are
    cleared by the next run)."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _stop_again)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _stop_again(signum, frame):
    os.write(2, b"mfbench: interrupted again during shutdown; stopped at once. Run the same command again "
                b"to resume from the last checkpoint\n")
    os._exit(143 if signum == signal.SIGTERM else 130)


def _run(args: argparse.Namespace) -> None:
    if args.command in RESULT_COMMANDS:
        from mfbench import files

        outs, ins = outputs_and_inputs(args)
        with files.all_or_none(outs, ins):
            args.func(args)
    else:
        args.func(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    try:
        old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (an embedding caller): its own handlers stay
        old = {}
    try:
        _run(args)
    except ConfigError as e:
        print(f"mfbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # one line; a killed run resumes from its checkpoint with the same command
        for s in old:  # stopped: the process only exits now; the interpreter's own end resets Python-level
            signal.signal(s, signal.SIG_IGN)  # handlers to the default (a further Ctrl-C would be a traceback)
        old = {}
        print(f"mfbench: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; "
              "run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:  # `mfbench claims | head`: the reader has all it wanted; no noise about it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 141
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
