"""Table 3: final test accuracy over seeds, beside every published value for the cell."""
from __future__ import annotations

import pandas as pd

from mfbench import aggregate, files, reference
from mfbench.experiments import table_args

CELL = ["dataset", "arch", "algorithm", "pred_mode"]


def compare(summary: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """One row per (measured cell, published value); cells without a published value keep one row.

    A published row with an empty pred_mode (mode not stated) sits beside every mode
    of that rule; synthetic datasets are matched to their real counterpart's number
    but noted 'not comparable'. Verdicts on the published claims: the claims ledger.
    """
    rows = []
    for _, m in summary.iterrows():
        real = m.dataset.removeprefix("synthetic-")
        pubs = ref[(ref.dataset == real) & (ref.arch == m.arch) & (ref.algorithm == m.algorithm)
                   & ((ref.pred_mode == "") | (ref.pred_mode == m.pred_mode))]
        base = m.to_dict()
        if pubs.empty:
            rows.append({**base, "published": float("nan"), "comparable": "no published value"})
        for _, p in pubs.iterrows():
            pub = reference.as_fraction(p.value, p.unit)
            rows.append({**base, "published": pub, "delta": m["mean"] - pub, "study": p.study, "source": p.source,
                         "flag": p.flag, "note": p.note,
                         "comparable": aggregate.comparability(m.dataset) or "yes"})
    cols = [*CELL, "arch_detail", "n", "n_diverged", "diverged_seeds", "mean", "std", "ci95_low", "ci95_high", "published", "delta", "comparable",
            "study", "source", "flag", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)


def table3(inputs: list[str], out: str, figure: str, *, selection: str = "last") -> pd.DataFrame:
    kept, diverged = aggregate.read_kept(inputs, "table3", same=("experiment",), distinct_runs=True)
    runs = aggregate.final_values(kept, split="test", metric="accuracy", selection=selection)
    summary = aggregate.note_diverged(aggregate.summarize(runs, [*CELL, "arch_detail"]), diverged,
                                      [*CELL, "arch_detail"])
    table = compare(summary, reference.load(artefact="table3"))
    files.write_csv(table, out)
    from mfbench.plots.accuracy import table3_figure

    table3_figure(table, figure, selection=selection)
    return table


def add_command(sub) -> None:
    a = sub.add_parser("table3", help="aggregate accuracy runs over seeds and compare with the paper's Table 3")
    table_args(a, out="comparison CSV")
    a.add_argument("--selection", default="last", choices=["last", "best_val"],
                   help="which epoch's test accuracy counts: the last, or the one with the best validation accuracy")
    a.set_defaults(func=lambda args: table3(args.inputs, args.out, args.figure, selection=args.selection))
