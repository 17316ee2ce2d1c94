"""`mfbench claims`: print the claims ledger; `mfbench claims-judge`: judge it from the evidence CSVs."""
from __future__ import annotations

import glob
import os

from mfbench.config import ConfigError


def read_evidence(paths: list[str]):
    """Every evidence CSV (tidy run rows, summaries) as one frame, each checked by the one reader."""
    from mfbench import results_io

    return results_io.read_evidence(paths)


def judge_cmd(args) -> None:
    from mfbench import claims, files
    from mfbench.claims import ledger

    margins = {}
    for item in args.margin or []:
        unit, _, v = item.partition("=")
        try:
            margins[unit] = float(v)
        except ValueError:
            raise ConfigError(f"--margin {item!r} must look like UNIT=NUMBER, e.g. fraction=0.005") from None
    st = ledger.Settings(confidence=args.confidence, min_n=args.min_n, ratio_tolerance=args.ratio_tolerance,
                         margins={**ledger.DEFAULT_MARGINS, **margins})
    led = ledger.judge(claims.load(), read_evidence(args.evidence), st)
    files.write_csv(led, args.out)
    if args.html:
        files.write_text(ledger.html(led, title=args.title, fig_dir=args.fig_dir), args.html)
    print(ledger.render(led))
    print(f"\nverdicts: {ledger.verdict_counts(led)}")


def show_cmd(args) -> None:
    from mfbench import results_io
    from mfbench.claims import ledger

    paths = [args.ledger] if args.ledger else sorted(glob.glob(os.path.join("results", "*", "claims.csv")))
    if not paths:
        raise ConfigError("no ledger found: run the workflow (it writes results/<name>/claims.csv) or pass a path")
    for p in paths:
        led = results_io.read_table(p, results_io.LEDGER)
        print(f"== {p}\n{ledger.render(led)}\n\nverdicts: {ledger.verdict_counts(led)}\n")


def add_command(sub) -> None:
    s = sub.add_parser("claims", help="print the claims ledger (results/<name>/claims.csv)")
    s.add_argument("ledger", nargs="?", default=None, help="a ledger CSV (default: every results/*/claims.csv)")
    s.set_defaults(func=show_cmd)

    j = sub.add_parser("claims-judge", help="judge every registered claim from evidence CSVs; write the ledger")
    j.add_argument("evidence", nargs="*", help="evidence CSVs: run CSVs and artefact summaries")
    j.add_argument("--out", required=True, help="ledger CSV (one row per claim and protocol)")
    j.add_argument("--html", default=None, help="also write the ledger as an HTML table (the report's front page)")
    j.add_argument("--fig-dir", default="figures", help="where the claims' figures are (for the HTML links)")
    j.add_argument("--title", default="Claims ledger", help="HTML title line (configuration, data, device)")
    j.add_argument("--confidence", type=float, default=0.95, help="interval level")
    j.add_argument("--min-n", type=int, default=3, help="fewest paired units (seeds) for a verdict")
    j.add_argument("--ratio-tolerance", type=float, default=1.5,
                   help="a ratio is consistent with a published one within this factor")
    j.add_argument("--margin", action="append", metavar="UNIT=VALUE",
                   help="default non-inferiority margin per quantity unit (fraction=0.005, percent=0.5)")
    j.set_defaults(func=judge_cmd)
