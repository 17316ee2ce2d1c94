"""The ledger: every claim of the registry judged from the evidence CSVs, one row per claim.

Regenerating it never trains anything: the evidence is the tidy CSVs the artefacts wrote.
A claim whose runs are missing or too few says so in its row instead of failing the ledger.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import mfbench.claims as claims_pkg
from mfbench.claims import Claim, stats, to_unit
from mfbench.claims.quantities import QUANTITIES, Fit

DEFAULT_MARGINS = claims_pkg.DEFAULT_MARGINS  # per quantity unit, when a claim states none (the plan's table)
DEFAULT_TOLERANCES = claims_pkg.DEFAULT_TOLERANCES

# (label when the claim holds, label when it is refuted), per (test, claim): the plan's table
LABELS = {("paired", "superior"): ("superior", "not superior"),
          ("paired", "non-inferior"): ("non-inferior", "inferior"),
          ("paired", "equivalent"): ("equivalent", "not equivalent"),
          ("absolute", "reproduced"): ("reproduced", "not reproduced"),
          ("ratio", "greater"): ("greater", "not greater"),
          ("ratio", "less"): ("less", "not less"),
          ("ratio", "consistent"): ("consistent", "not consistent")}


@dataclass(frozen=True)
class Settings:
    alpha: float = stats.ALPHA  # one-sided level of every decision (the 95 % interval's tail)
    min_n: int = 3            # t-intervals from 2 runs (t = 12.7) support no verdict
    ratio_tolerance: float = 1.5  # a ratio measured on other hardware counts as consistent within this factor
    margins: dict | None = None
    allow_synthetic: bool = False  # wiring check: judge synthetic stand-ins as if real (rows marked)

    @property
    def confidence(self) -> float:
        return 1 - 2 * self.alpha


def _match(df: pd.DataFrame, keys: dict) -> pd.DataFrame:
    for k, v in keys.items():
        if k not in df:
            return df.iloc[0:0]
        vals = v if isinstance(v, list) else [v]
        if pd.api.types.is_numeric_dtype(df[k]) and all(isinstance(x, (int, float)) for x in vals):
            df = df[df[k].isin([float(x) for x in vals])]  # 1 == 1.0: a column with gaps reads as float
        else:
            df = df[df[k].astype(str).isin([str(x) for x in vals])]
    return df


def side_rows(evidence: pd.DataFrame, c: Claim, side: dict, protocol: str,
              whole_runs: bool = False) -> tuple[pd.DataFrame, bool]:
    """Evidence rows of one side under a protocol, and whether they are synthetic stand-ins.
    `whole_runs`: every row of the side's runs, whatever prediction mode a row is about (a run's
    `diverged` marker names none)."""
    keys = {**c.select, **side}
    if whole_runs:
        keys.pop("pred_mode", None)
    exp = keys.get("experiment", c.artefact)
    keys["experiment"] = f"{exp}_tuned" if protocol == "tuned" else exp
    rows = _match(evidence, keys)
    if rows.empty and "dataset" in keys:  # smoke runs: the real dataset's synthetic twin
        ds = keys["dataset"]
        keys["dataset"] = [f"synthetic-{d}" for d in (ds if isinstance(ds, list) else [ds])]
        rows = _match(evidence, keys)
    # a claim that names no dataset (memory slopes, latency) still matches stand-ins: the rows say so
    synthetic = "dataset" in rows and rows["dataset"].astype(str).str.startswith("synthetic-").any()
    return rows, bool(synthetic)


def diverged_seeds(rows: pd.DataFrame) -> set:
    """Seeds whose runs produced a non-finite loss or accuracy (or are marked diverged)."""
    if rows.empty or "seed" not in rows:
        return set()
    bad = rows[rows.metric.astype(str).str.startswith(("loss", "accuracy", "diverged"))]
    v = pd.to_numeric(bad.value, errors="coerce")
    marked = bad.metric.astype(str) == "diverged"
    return set(bad.loc[~np.isfinite(v) | (marked & (v > 0)), "seed"])


def _fmt(x: float, unit: str) -> str:
    if unit == "fraction":
        return f"{100 * x:.2f}"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _published_text(c: Claim) -> str:
    p = c.published
    u = {"percent": " %", "fraction": ""}.get(p.get("unit", ""), f" {p.get('unit', '')}".rstrip())
    if "value" in p:
        return f"{p.get('printed', format(p['value'], 'g'))}{u}"
    if "a" in p and "b" in p:
        return f"{p['a']:g} vs {p['b']:g}{u}"
    return ""


def _side_budget(rows: pd.DataFrame) -> set:
    """The epoch budgets the side's runs were made at, per seed: the configured `epochs` the run recorded
    (column `budget_epochs`, from its metadata) or, without it, the last epoch it wrote."""
    if rows.empty or "epoch" not in rows:
        return set()
    r = rows.assign(_ep=pd.to_numeric(rows["epoch"], errors="coerce"),
                    _b=pd.to_numeric(rows["budget_epochs"], errors="coerce") if "budget_epochs" in rows else np.nan)
    by = r.groupby("seed") if "seed" in r else r.groupby(lambda _: 0)
    per = by["_b"].max().fillna(by["_ep"].max())
    return {int(b) for b in per.dropna() if b > 0}  # epoch 0: a measurement outside training (latency)


def _budget_check(c: Claim, got: list) -> tuple[str, str | None]:
    """(budget text for the row, why the budget differs or None). Only a claim that names its budget
    is checked; the others show the evidence's."""
    sides = [_side_budget(r) for r, _ in got]
    seen = sorted(set().union(*sides))
    text = "/".join(str(b) for b in seen) + " ep" if seen else ""
    want = c.budget.get("epochs")
    if want is None:
        return text, None
    text = f"{text} (claim: {want} ep)"
    if any(s and s != {want} for s in sides):
        return text, f"evidence made at {', '.join(map(str, seen))} epochs; the claim refers to {want}"
    return text, None


def region(c: Claim, unit: str, st: Settings) -> tuple[stats.Region, float, str]:
    """The claim's region on the estimate's test scale, the margin / tolerance it uses (in the quantity's
    unit, or a factor for ratios), and the row's text for it."""
    if c.test == "paired":
        margin = c.margin if c.margin is not None else (st.margins or DEFAULT_MARGINS).get(unit, math.nan)
        if c.claim == "superior":
            return stats.Region("above", lo=c.superiority_margin), margin, \
                f"> {_fmt_amount(c.superiority_margin, unit)}"
        if c.claim == "non-inferior":
            return stats.Region("above", lo=-margin), margin, f"margin {_fmt_amount(margin, unit)}"
        return stats.Region("inside", -margin, margin), margin, f"+-{_fmt_amount(margin, unit)}"
    if c.test == "absolute":
        pub = to_unit(c.published["value"], c.published.get("unit", unit), unit)
        half = to_unit(stats.rounding_half_unit(c.published["value"], c.published.get("printed")),
                       c.published.get("unit", unit), unit)
        tol = to_unit(c.tolerance["value"], c.tolerance["unit"], unit) if c.tolerance else DEFAULT_TOLERANCES[unit]
        w = tol + half
        return stats.Region("inside", pub - w, pub + w), w, \
            f"+-{_fmt_amount(tol, unit)} tol. +{_fmt_amount(half, unit)} rounding"
    if c.claim == "consistent":
        t = float(c.published["value"])
        f = float(c.tolerance["value"]) if c.tolerance else st.ratio_tolerance
        return stats.Region("inside", math.log(t / f), math.log(t * f)), f, f"{t:g}x within factor {f:g}"
    t = c.threshold or 1.0
    kind = "above" if c.claim == "greater" else "below"
    return (stats.Region(kind, lo=math.log(t)) if kind == "above" else stats.Region(kind, hi=math.log(t))), t, \
        f"{'>' if kind == 'above' else '<'} {t:g}x"


def _fmt_amount(x: float, unit: str) -> str:
    if unit == "fraction":
        return f"{100 * x:g} pp"
    return f"{x:g} {unit}".rstrip()


def estimate(c: Claim, a, b=None, st: Settings = Settings()) -> stats.Estimate:
    """The claim's estimate from per-unit values (paired by position): mean difference, mean, or
    geometric-mean ratio, each with its (1 - 2 alpha) t-interval."""
    if c.test == "paired":
        return stats.mean_ci(np.asarray(a, float) - np.asarray(b, float), st.alpha)
    if c.test == "absolute":
        return stats.mean_ci(a, st.alpha)
    return stats.log_ratio(a, b, st.alpha)


def verdict_of(c: Claim, est: stats.Estimate, st: Settings = Settings()) -> str:
    """The verdict of one claim judged alone (a family of one, so Holm changes nothing): the same
    region, p-values and labels the ledger uses. The calibration tests simulate through it."""
    reg, _, _ = region(c, est.unit or QUANTITIES[c.quantity].unit, st)
    d = stats.decide(*stats.p_values(est, reg), st.alpha)
    yes, no = LABELS[(c.test, c.claim)]
    return {"holds": yes, "refuted": no}.get(d, "inconclusive")


def judge_one(c: Claim, evidence: pd.DataFrame, protocol: str, st: Settings) -> dict:
    """One claim under one protocol: the estimate, its region's p-values (decided later, after Holm
    within the family), or the reason there is no verdict."""
    q = QUANTITIES[c.quantity]
    sides = [c.a, c.b] if c.test in ("paired", "ratio") else [c.a]
    got = [side_rows(evidence, c, s, protocol) for s in sides]
    if any(r.empty for r, _ in got):
        return {"verdict": "no evidence yet", "note": "no runs match " + ("both sides" if len(got) > 1 else "it")}
    synthetic = any(syn for _, syn in got)
    bad = set().union(*(diverged_seeds(side_rows(evidence, c, s, protocol, whole_runs=True)[0]) for s in sides))
    note = f"seed(s) {sorted(int(s) for s in bad)} diverged: left out; " if bad else ""
    budget_text, budget_differs = _budget_check(c, got)
    vals = [q(r[~r.seed.isin(bad)] if "seed" in r else r, protocol) for r, _ in got]
    unit = q.unit
    out = {"unit": unit, "budget": budget_text, "synthetic": synthetic}

    if c.test == "ratio" and all(isinstance(v, Fit) for v in vals):
        a, b = vals
        est = stats.fitted_ratio(a.value, a.stderr, b.value, b.stderr, min(a.dof, b.dof), st.alpha)
    else:
        if any(isinstance(v, Fit) for v in vals):
            return {**out, "verdict": "no evidence yet", "note": "a fitted quantity needs a ratio test on both sides"}
        if len(vals) == 2:  # pair by seed (or repeat): only units present on both sides count
            vals = [v.dropna() for v in vals]
            common = vals[0].index.intersection(vals[1].index)
            if len(common) < max(len(vals[0]), len(vals[1])):
                note += f"{len(common)} paired units of {max(len(vals[0]), len(vals[1]))}; "
            vals = [v.loc[common] for v in vals]
        n = len(vals[0])
        if n == 0:
            return {**out, "verdict": "no evidence yet", "note": note + "no usable runs"}
        est = estimate(c, *(v.values for v in vals), st=st)
    out.update(measured=est.value, low=est.low, high=est.high, n=est.n, what=est.what, sd=est.sd)
    if c.test == "ratio":
        out["unit"] = "x"
    reg, margin, margin_text = region(c, unit, st)
    out.update(margin=margin, margin_text=margin_text)
    if synthetic and not st.allow_synthetic:
        return {**out, "verdict": "not comparable (synthetic data)", "note": note}
    if synthetic:
        note += "synthetic stand-in judged as if real (a wiring check, not a result); "
    if budget_differs and not synthetic:
        return {**out, "verdict": "budget differs", "note": note + budget_differs}
    if budget_differs:
        note += f"budget ignored ({budget_differs}); "
    if est.n < st.min_n:
        return {**out, "verdict": f"n = {est.n}: too few for a verdict", "note": note}
    if not math.isfinite(margin) and c.claim in ("non-inferior", "equivalent"):  # load() makes this unreachable
        return {**out, "verdict": "no margin", "note": note + f"no default margin for unit {unit!r}"}
    p_hold, p_refute = stats.p_values(est, reg)
    needed = stats.seeds_to_decide(est, reg, st.alpha) if est.what.startswith(("mean", "geometric")) else None
    return {**out, "p_hold": p_hold, "p_refute": p_refute, "seeds_needed": needed, "note": note,
            "verdict": "pending"}


COLUMNS = ["id", "paper", "version", "provenance", "family", "where", "statement", "flag", "test", "claim",
           "published", "artefact", "figure", "protocol", "measured", "low", "high", "unit", "n", "margin", "margin_text",
           "budget", "p_hold", "p_hold_adj", "p_refute", "p_refute_adj", "verdict", "holds", "seeds_needed",
           "sd", "synthetic", "what", "note"]


def _decide(led: pd.DataFrame, st: Settings) -> pd.DataFrame:
    """Holm within each family (both directions separately), then one verdict per row from the
    adjusted p-values: the claim's own label when it holds, its refutation's when refuted, else
    'underpowered' with the paired seeds that would decide it at the observed spread."""
    led = led.copy()
    led["p_hold_adj"] = np.nan
    led["p_refute_adj"] = np.nan
    pend = led.verdict == "pending"
    for _, idx in led[pend].groupby("family").groups.items():
        led.loc[idx, "p_hold_adj"] = stats.holm(led.loc[idx, "p_hold"], st.alpha)
        led.loc[idx, "p_refute_adj"] = stats.holm(led.loc[idx, "p_refute"], st.alpha)
    led["holds"] = pd.Series([pd.NA] * len(led), dtype="object")
    for i in led.index[pend]:
        r = led.loc[i]
        d = stats.decide(r.p_hold_adj, r.p_refute_adj, st.alpha)
        yes, no = LABELS[(r.test, r.claim)]
        if d == "holds":
            led.loc[i, ["verdict", "holds"]] = [yes, True]
        elif d == "refuted":
            led.loc[i, ["verdict", "holds"]] = [no, False]
        elif pd.notna(r.seeds_needed) and r.seeds_needed > r.n:
            led.loc[i, "verdict"] = "underpowered"
            led.loc[i, "note"] = (r.note or "") + (f"~{int(r.seeds_needed)} paired seeds would decide it at the "
                                                   f"observed mean and spread; ")
        elif pd.notna(r.seeds_needed):
            led.loc[i, "verdict"] = "inconclusive after Holm"
        else:
            led.loc[i, "verdict"] = "inconclusive"
    return led


def judge(claims: list[Claim], evidence: pd.DataFrame, st: Settings = Settings()) -> pd.DataFrame:
    """The ledger, long: one row per (claim, protocol)."""
    rows = []
    for c in claims:
        for p in c.protocols:
            try:
                r = judge_one(c, evidence, p, st)
            except (ValueError, KeyError) as e:  # a malformed evidence file must not sink every other claim
                r = {"verdict": "evidence error", "note": str(e)}
            rows.append({"id": c.id, "paper": c.paper, "version": c.version, "provenance": c.provenance,
                         "family": c.family, "where": c.where,
                         "statement": c.statement, "flag": c.flag, "test": c.test, "claim": c.claim,
                         "published": _published_text(c), "artefact": c.artefact, "figure": c.figure,
                         "protocol": p, **r})
    return _decide(pd.DataFrame(rows).reindex(columns=COLUMNS), st)


def header(ledger: pd.DataFrame, st: Settings = Settings()) -> str:
    """The multiplicity statement the ledger opens with."""
    judged = ledger[ledger.p_hold.notna()] if "p_hold" in ledger else ledger.iloc[0:0]
    fams = judged.family.nunique() if len(judged) else 0
    a = st.alpha
    return (f"{len(judged)} rows judged in {fams} families; Holm within each family at one-sided alpha = {a:g}: "
            f"P(any false 'holds') <= {a:g} and P(any false refutation) <= {a:g} per family, so if every judged "
            f"claim sat exactly at its boundary, about {a * fams:.2f} families would show a false 'holds' and "
            f"{a * fams:.2f} a false refutation (P(at least one anywhere) <= {1 - (1 - 2 * a) ** fams:.2f}).")


def measured_text(r: pd.Series) -> str:
    if pd.isna(r.get("measured")):
        return ""
    unit = r.unit
    if r.test == "paired":
        scale, suffix = (100, " pp") if unit == "fraction" else (1, f" {unit}")
        ci = "" if pd.isna(r.low) else f" [{scale * r.low:+.2f}, {scale * r.high:+.2f}]"
        return f"{scale * r.measured:+.2f}{suffix}{ci}, n={int(r.n)}"
    suffix = " %" if unit in ("fraction", "percent") else ("x" if unit == "x" else f" {unit}")
    lo = "" if pd.isna(r.low) else f" [{_fmt(r.low, unit)}, {_fmt(r.high, unit)}]"
    return f"{_fmt(r.measured, unit)}{suffix}{lo}, n={int(r.n)}"


def wide(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: statement, source, published, measured (CI, n) and verdict per protocol."""
    led = ledger.assign(measured_text=ledger.apply(measured_text, axis=1))
    keep = ["id", "statement", "paper", "version", "provenance", "where", "flag", "published", "figure"]
    out = led.drop_duplicates("id").reindex(columns=keep).set_index("id")
    for p in ("paper", "tuned"):
        sub = led[led.protocol == p].set_index("id")
        if sub.empty:
            continue
        out[f"measured ({p})"] = sub.measured_text
        out[f"verdict ({p})"] = sub.verdict + sub.apply(
            lambda r: f" ({r.margin_text})" if isinstance(r.get("margin_text"), str) and r.margin_text else "",
            axis=1) + sub.apply(lambda r: " [synthetic]" if str(r.get("synthetic")) == "True" else "", axis=1)
    return out.reset_index().fillna("")


def _short(v: str) -> str:
    return str(v).split(" (")[0]


def verdict_counts(ledger: pd.DataFrame) -> str:
    counts = ledger.groupby("protocol").verdict.apply(
        lambda v: ", ".join(f"{k}: {n}" for k, n in v.map(_short).value_counts().items()))
    return "; ".join(f"{p}: {t}" for p, t in counts.items())


def counts_table(ledger: pd.DataFrame) -> pd.DataFrame:
    """Rows per verdict (columns) for each paper and version (rows)."""
    led = ledger.assign(v=ledger.verdict.map(_short), source=ledger.paper + " " + ledger.version.fillna(""))
    tab = pd.crosstab(led.source, led.v, margins=True, margins_name="all")
    return tab.rename_axis(index="paper version", columns=None)


def lines(ledger: pd.DataFrame) -> pd.DataFrame:
    """One line per claim and protocol: id, protocol, verdict, effect and interval, n, budget."""
    need = pd.to_numeric(ledger.get("seeds_needed"), errors="coerce") if "seeds_needed" in ledger else None
    verdict = ledger.verdict.fillna("")
    if need is not None:  # underpowered says aloud how many paired seeds would decide it
        verdict = verdict.where(verdict != "underpowered", verdict + " (~" + need.fillna(0).astype(int).astype(str)
                                + " seeds)")
    return pd.DataFrame({"id": ledger.id, "protocol": ledger.protocol, "verdict": verdict,
                         "measured": ledger.apply(measured_text, axis=1),
                         "budget": ledger.budget.astype(object).fillna(""), "paper": ledger.paper,
                         "version": ledger.version})


def _markdown(df: pd.DataFrame, index: bool = False) -> str:
    d = df.reset_index() if index else df
    rows = [[str(x).replace("|", "\\|") for x in r] for r in d.astype(str).values.tolist()]
    head = [str(c) for c in d.columns]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def render(ledger: pd.DataFrame, width: int | None = None, fmt: str = "text") -> str:
    """The ledger for a person: counts per verdict and paper, then one line per claim (text fitted to
    the terminal width; markdown; csv)."""
    import shutil
    import textwrap

    tab, ls = counts_table(ledger), lines(ledger)
    if fmt == "csv":
        return ls.to_csv(index=False)
    if fmt == "markdown":
        return "\n\n".join([header(ledger), _markdown(tab, index=True),
                             _markdown(ls.drop(columns=["paper", "version"]))])
    width = width or shutil.get_terminal_size((160, 24)).columns
    out = [*textwrap.wrap(header(ledger), width), "", tab.to_string(), ""]
    bw = max([10, *ls.budget.astype(str).str.len()])
    idw = max(ls.id.str.len(), default=0)  # ids stay whole at any width: they are what a reader looks up
    for r in ls.itertuples():
        head = f"{r.id:<{idw}} {r.protocol:<6}"
        line = f"{head} {r.verdict:<28} {r.measured:<40} {r.budget:<{bw}}".rstrip()
        if len(line) <= width:
            out.append(line)
            continue
        # too narrow for one line: the id (unpadded) and the verdict where it fits, the rest wrapped below
        first = f"{r.id} {r.protocol} {r.verdict}".rstrip()
        tail = [r.measured, r.budget] if len(first) <= width else [r.verdict, r.measured, r.budget]
        out.append(first if len(first) <= width else f"{r.id} {r.protocol}")
        out += textwrap.wrap("; ".join(t for t in tail if t), width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)


def _figure_href(figure: str, fig_dir: str) -> str:
    """Link from a report item to another one (Snakemake's own report_href), or the plain path."""
    path = f"{fig_dir}/{figure}"
    try:
        from snakemake.iocontainers import ReportHref

        return str(ReportHref(path))
    except ImportError:  # pragma: no cover - snakemake is a dependency
        return path


def html(ledger: pd.DataFrame, *, title: str, fig_dir: str) -> str:
    """The ledger as one HTML table (the report's front page), each claim linking to its figure."""
    import html as h

    w = wide(ledger).sort_values(["paper", "version"], kind="stable")  # grouped by paper and version
    w["source"] = [f"{h.escape(f'{r.paper} {r.version}, {r.where} ({r.flag})')}"
                   + (f"<br><small>{h.escape(r.provenance)}</small>" if r.provenance else "")
                   for r in w.itertuples()]  # whether the quoted version was checked against its text
    w["figure"] = [f'<a href="{h.escape(_figure_href(f, fig_dir))}">{h.escape(f)}</a>' if f else "" for f in w.figure]
    cols = ["statement", "source", "published"] + [c for c in w.columns if c.startswith(("measured", "verdict"))] \
        + ["figure"]
    table = w[cols].to_html(index=False, escape=False, border=0, classes="ledger", na_rep="")
    style = ("<style>body{font-family:sans-serif;font-size:13px}table.ledger{border-collapse:collapse}"
             "table.ledger td,table.ledger th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;"
             "vertical-align:top}</style>")
    counts = h.escape(verdict_counts(ledger))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{h.escape(title)}</title>{style}</head><body>"
            f"<h2>{h.escape(title)}</h2><p>Verdicts: {counts}.</p><p>{h.escape(header(ledger))} Every verdict follows "
            f"the analysis plan (mfbench/claims/registry/README.md): one 95 % interval per claim, its region "
            f"(superior: "
            f"above 0; non-inferior: above -margin; equivalent, reproduced, consistent: inside, TOST); no verdict "
            f"when the evidence was made at another budget.</p>{table}</body></html>")
