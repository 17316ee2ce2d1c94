"""The ledger: every claim of the registry judged from the evidence CSVs, one row per claim.

Regenerating it never trains anything: the evidence is the tidy CSVs the artefacts wrote.
A claim whose runs are missing or too few says so in its row instead of failing the ledger.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mfbench.claims import Claim, stats
from mfbench.claims.quantities import QUANTITIES, Fit

DEFAULT_MARGINS = {  # non-inferiority margins per quantity unit, when a claim states none
    "fraction": 0.005,  # half an accuracy point: below every gap the MF paper calls an improvement on CIFAR
    "percent": 0.5,
}


@dataclass(frozen=True)
class Settings:
    confidence: float = 0.95
    min_n: int = 3            # t-intervals from 2 runs (t = 12.7) support no verdict
    ratio_tolerance: float = 1.5  # a ratio measured on other hardware counts as consistent within this factor
    margins: dict | None = None


def _match(df: pd.DataFrame, keys: dict) -> pd.DataFrame:
    for k, v in keys.items():
        if k not in df:
            return df.iloc[0:0]
        allowed = [str(x) for x in (v if isinstance(v, list) else [v])]
        df = df[df[k].astype(str).isin(allowed)]
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
        return rows, not rows.empty
    return rows, False


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
        return f"{p['value']:g}{u}"
    if "a" in p and "b" in p:
        return f"{p['a']:g} vs {p['b']:g}{u}"
    return ""


def judge_one(c: Claim, evidence: pd.DataFrame, protocol: str, st: Settings) -> dict:
    """One claim under one protocol: measured estimate, n, verdict, whether it holds, and a note."""
    q = QUANTITIES[c.quantity]
    sides = [c.a, c.b] if c.test in ("paired", "ratio") else [c.a]
    got = [side_rows(evidence, c, s, protocol) for s in sides]
    if any(r.empty for r, _ in got):
        return {"verdict": "no evidence yet", "note": "no runs match " + ("both sides" if len(got) > 1 else "it")}
    synthetic = any(syn for _, syn in got)
    bad = set().union(*(diverged_seeds(side_rows(evidence, c, s, protocol, whole_runs=True)[0]) for s in sides))
    note = f"seed(s) {sorted(int(s) for s in bad)} diverged: left out; " if bad else ""
    vals = [q(r[~r.seed.isin(bad)] if "seed" in r else r, protocol) for r, _ in got]
    unit = q.unit
    out = {"unit": unit}

    if c.test == "ratio" and all(isinstance(v, Fit) for v in vals):
        a, b = vals
        est = stats.fitted_ratio(a.value, a.stderr, b.value, b.stderr, min(a.dof, b.dof), st.confidence)
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
        if c.test == "paired":
            est = stats.mean_ci(vals[0].values - vals[1].values, st.confidence)
        elif c.test == "absolute":
            est = stats.prediction_interval(vals[0].values, st.confidence)
        else:
            est = stats.log_ratio(vals[0].values, vals[1].values, st.confidence)
    out.update(measured=est.value, low=est.low, high=est.high, n=est.n, what=est.what)
    if c.test == "ratio":
        out["unit"] = "x"
    if synthetic:
        return {**out, "verdict": "not comparable (synthetic data)", "note": note}
    if est.n < st.min_n:
        return {**out, "verdict": f"n = {est.n}: too few for a verdict", "note": note}

    if c.test == "paired":
        margin = c.margin if c.margin is not None else (st.margins or DEFAULT_MARGINS).get(unit)
        if margin is None:
            return {**out, "verdict": "no margin", "note": note + f"no default margin for unit {unit!r}"}
        verdict = stats.paired_verdict(stats.Estimate(est.value, est.low, est.high, est.n), margin)
        return {**out, "margin": margin, "verdict": verdict, "holds": verdict in stats.PAIRED_HOLDS[c.claim],
                "note": note}
    if c.test == "absolute":
        pub = float(c.published["value"])
        if c.published.get("unit") == "percent" and unit == "fraction":
            pub /= 100.0
        verdict = stats.absolute_verdict(est, pub)
        return {**out, "verdict": verdict, "holds": verdict == "consistent", "note": note}
    threshold = float(c.published["value"]) if c.claim == "consistent" else (c.threshold or 1.0)
    verdict = stats.ratio_verdict(est, c.claim, threshold, st.ratio_tolerance)
    return {**out, "margin": st.ratio_tolerance if c.claim == "consistent" else threshold, "verdict": verdict,
            "holds": verdict == c.claim, "note": note}


COLUMNS = ["id", "paper", "where", "statement", "flag", "test", "claim", "published", "artefact", "figure", "protocol",
           "measured", "low", "high", "unit", "n", "margin", "verdict", "holds", "what", "note"]


def judge(claims: list[Claim], evidence: pd.DataFrame, st: Settings = Settings()) -> pd.DataFrame:
    """The ledger, long: one row per (claim, protocol)."""
    rows = []
    for c in claims:
        for p in c.protocols:
            try:
                r = judge_one(c, evidence, p, st)
            except (ValueError, KeyError) as e:  # a malformed evidence file must not sink every other claim
                r = {"verdict": "evidence error", "note": str(e)}
            rows.append({"id": c.id, "paper": c.paper, "where": c.where, "statement": c.statement, "flag": c.flag,
                         "test": c.test, "claim": c.claim, "published": _published_text(c), "artefact": c.artefact,
                         "figure": c.figure, "protocol": p, **r})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


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
    out = led.drop_duplicates("id")[["id", "statement", "paper", "where", "flag", "published", "figure"]].set_index("id")
    for p in ("paper", "tuned"):
        sub = led[led.protocol == p].set_index("id")
        if sub.empty:
            continue
        out[f"measured ({p})"] = sub.measured_text
        out[f"verdict ({p})"] = sub.verdict + sub.apply(
            lambda r: "" if pd.isna(r.get("margin")) or r.test == "absolute" else
            (f" (margin {100 * r.margin:g} pp)" if r.unit == "fraction" else f" (margin {r.margin:g})"), axis=1)
    return out.reset_index().fillna("")


def render(ledger: pd.DataFrame, width: int = 200) -> str:
    """The ledger for a terminal."""
    w = wide(ledger)
    cols = ["id", "statement", "where", "published"] + [c for c in w.columns if c.startswith(("measured", "verdict"))]
    return w[cols].to_string(index=False, max_colwidth=60, line_width=width)


def verdict_counts(ledger: pd.DataFrame) -> str:
    counts = ledger.groupby("protocol").verdict.apply(
        lambda v: ", ".join(f"{k}: {n}" for k, n in v.str.replace(r" \(.*", "", regex=True).value_counts().items()))
    return "; ".join(f"{p}: {t}" for p, t in counts.items())


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

    w = wide(ledger)
    w["source"] = w.paper + ", " + w["where"] + " (" + w.flag + ")"
    w["figure"] = [f'<a href="{h.escape(_figure_href(f, fig_dir))}">{h.escape(f)}</a>' if f else "" for f in w.figure]
    cols = ["statement", "source", "published"] + [c for c in w.columns if c.startswith(("measured", "verdict"))] \
        + ["figure"]
    table = w[cols].to_html(index=False, escape=False, border=0, classes="ledger", na_rep="")
    style = ("<style>body{font-family:sans-serif;font-size:13px}table.ledger{border-collapse:collapse}"
             "table.ledger td,table.ledger th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;"
             "vertical-align:top}</style>")
    counts = h.escape(verdict_counts(ledger))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{h.escape(title)}</title>{style}</head><body>"
            f"<h2>{h.escape(title)}</h2><p>Verdicts: {counts}. Paired claims: mean of per-seed differences with a "
            f"t-interval against a non-inferiority margin; published single values: a prediction interval for one "
            f"run; ratios: geometric-mean (or fitted) ratio with its interval.</p>{table}</body></html>")
