"""`mfbench claims`: print the claims ledger (or `claims plan`: seeds per claim from pilot runs);
`mfbench claims-judge`: judge it from the evidence CSVs."""
from __future__ import annotations

import glob
import json
import os

from mfbench.config import ConfigError

FORMATS = ("text", "markdown", "csv")


def read_evidence(paths: list[str]):
    """Every evidence CSV (tidy run rows, summaries) as one frame, each checked by the one reader
    (`mfbench.results_io`), run CSVs with the epoch budget their metadata records (`budget_epochs`)."""
    from mfbench import results_io

    return results_io.read_evidence(paths)


def _settings(args):
    from mfbench.claims import ledger

    margins = {}
    for item in args.margin or []:
        unit, _, v = item.partition("=")
        try:
            margins[unit] = float(v)
        except ValueError:
            raise ConfigError(f"--margin {item!r} must look like UNIT=NUMBER, e.g. fraction=0.005") from None
    if not 0.5 < args.confidence < 1:
        raise ConfigError(f"--confidence {args.confidence} must lie between 0.5 and 1, e.g. 0.95")
    return ledger.Settings(alpha=(1 - args.confidence) / 2, min_n=args.min_n, ratio_tolerance=args.ratio_tolerance,
                           margins={**ledger.DEFAULT_MARGINS, **margins},
                           allow_synthetic=getattr(args, "allow_synthetic", False))


def judge_cmd(args) -> None:
    from mfbench import claims, files
    from mfbench.claims import ledger

    st = _settings(args)
    led = ledger.judge(claims.load(), read_evidence(args.evidence), st)
    files.write_csv(led, args.out)
    if args.html:
        files.write_text(ledger.html(led, title=args.title, fig_dir=args.fig_dir), args.html)
    print(ledger.render(led))
    print(f"\nverdicts: {ledger.verdict_counts(led)}")


def plan_cmd(args, evidence: list[str]) -> None:
    from mfbench import claims
    from mfbench.claims import plan

    if not evidence:
        raise ConfigError("claims plan needs pilot evidence: run CSVs (e.g. results/reference/cpu/claims/runs/...)")
    tab = plan.plan(claims.load(), read_evidence(evidence), _settings(args), power=args.power)
    if args.format == "csv":
        print(tab.to_csv(index=False), end="")
    elif args.format == "markdown":
        from mfbench.claims.ledger import _markdown

        print(_markdown(tab))
    else:
        print(plan.render(tab))


def show_cmd(args) -> None:
    from mfbench import results_io
    from mfbench.claims import ledger

    if args.what[:1] == ["plan"]:
        return plan_cmd(args, args.what[1:])
    if len(args.what) > 1:
        raise ConfigError(f"claims takes one ledger CSV or `plan EVIDENCE...`, got {args.what}")
    paths = args.what or sorted(glob.glob(os.path.join("results", "*", "claims.csv")))
    if not paths:
        raise ConfigError("no ledger found: run the workflow (it writes results/<name>/claims.csv) or pass a path")
    for p in paths:
        led = results_io.read_table(p, results_io.LEDGER)
        if args.format == "text":
            print(f"== {p}")
        print(ledger.render(led, fmt=args.format))


def _stat_args(p) -> None:
    p.add_argument("--confidence", type=float, default=0.95,
                   help="two-sided interval level; every decision is one-sided at (1 - confidence) / 2")
    p.add_argument("--min-n", type=int, default=3, help="fewest paired units (seeds) for a verdict")
    p.add_argument("--ratio-tolerance", type=float, default=1.5,
                   help="a ratio is consistent with a published one within this factor (unless the claim states one)")
    p.add_argument("--margin", action="append", metavar="UNIT=VALUE",
                   help="default non-inferiority margin per quantity unit (fraction=0.005, percent=0.5)")


def add_command(sub) -> None:
    s = sub.add_parser("claims", help="print the claims ledger; `claims plan RUNS...`: paired seeds per claim for 80 percent power")
    s.add_argument("what", nargs="*", help="a ledger CSV (default: every results/*/claims.csv), or `plan` "
                                           "followed by pilot run CSVs")
    s.add_argument("--format", default="text", choices=FORMATS, help="how to print the ledger")
    s.add_argument("--power", type=float, default=0.8, help="claims plan: the power to plan for")
    _stat_args(s)
    s.set_defaults(func=show_cmd)

    j = sub.add_parser("claims-judge", help="judge every registered claim from evidence CSVs; write the ledger")
    j.add_argument("evidence", nargs="*", help="evidence CSVs: run CSVs and artefact summaries")
    j.add_argument("--out", required=True, help="ledger CSV (one row per claim and protocol)")
    j.add_argument("--html", default=None, help="also write the ledger as an HTML table (the report's front page)")
    j.add_argument("--fig-dir", default="figures", help="where the claims' figures are (for the HTML links)")
    j.add_argument("--title", default="Claims ledger", help="HTML title line (configuration, data, device)")
    j.add_argument("--allow-synthetic", action="store_true",
                   help="wiring check: judge synthetic stand-ins as if real (each row marked; never a result)")
    _stat_args(j)
    j.set_defaults(func=judge_cmd)
