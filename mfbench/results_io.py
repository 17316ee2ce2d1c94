"""The one reader of result files: run CSVs, summary tables, ledgers, run metadata.

Every command that reads results reads them here, and every file is checked before a number
of it is used: present and a regular file, readable, not empty, not binary, UTF-8 (a BOM is
dropped), ending where a CSV row ends (a file cut off mid-value is damaged, not short), every
row as wide as its header, the columns its kind declares, numbers where numbers belong,
`nan`/`inf` only where the runner writes them (a diverged run's loss or accuracy, which
`aggregate.split_diverged` then leaves out aloud), no row twice, no run in two files, and the
experiment / rule the command expects. A file that fails is one `ResultFileError` naming the
file and the reason (the CLI prints it and exits 2), before any output is written.

The run CSV's schema is declared once, here (`RUN`); `files.COLUMNS` is its column order.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field

import pandas as pd

from mfbench.config import ConfigError
from mfbench.files import COLUMNS


class ResultFileError(ConfigError):
    """A result file that cannot be used: one line naming it and why, exit 2."""


@dataclass(frozen=True)
class Schema:
    """What one kind of result file holds: required columns and their types (other columns are
    kept as text). `finite_unless`: metric prefixes whose value may be nan/inf (the row says why)."""
    kind: str
    text: tuple[str, ...] = ()
    integer: tuple[str, ...] = ()
    real: tuple[str, ...] = ()
    finite_unless: tuple[str, ...] = ()
    key_exclude: tuple[str, ...] = field(default=("value",))  # columns that do not identify a row
    may_be_empty: tuple[str, ...] = ()  # numeric columns where '' means "not applicable"
    pandas_types: bool = False  # after the checks, cells typed as pandas types them ('' is NaN)

    @property
    def columns(self) -> list[str]:
        return [*self.text, *self.integer, *self.real]


# The run CSV `mfbench train` (and the measurement commands, with extra columns) writes.
# A diverged run's loss/accuracy may be nan/inf (the runner writes them, plus a `diverged` row);
# '' is how files written before NaN was spelled out hold it.
RUN = Schema("run CSV", text=("experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "pred_mode",
                              "phase", "split", "metric", "unit"),
             integer=("depth", "width", "batch_size", "seed", "epoch"), real=("lr", "value"),
             finite_unless=("loss", "accuracy"), may_be_empty=("epoch",))  # a memory probe has no epoch
assert sorted(RUN.columns) == sorted(COLUMNS), "files.COLUMNS and results_io.RUN must name the same columns"
RUN_KEYS = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "depth", "width",
            "batch_size", "lr", "seed"]  # one run (= aggregate.RUN_KEYS)

# Summaries that are evidence for the claims ledger besides run CSVs.
FIG5_TARGET_RUNS = Schema("fig5-summary --target-runs-out CSV",
                          text=("experiment", "dataset", "arch_detail", "algorithm", "schedule", "pred_mode", "split",
                                "reached"),
                          integer=("depth", "width", "batch_size", "seed", "epochs_run"),
                          real=("lr", "target", "epoch_reached"), finite_unless=("",), key_exclude=("epoch_reached",))
MEMORY_SLOPES = Schema("memory-slopes CSV", text=("experiment", "dataset", "arch", "algorithm", "device", "metric",
                                                  "unit"),
                       integer=("n",), real=("slope",), finite_unless=("",), key_exclude=("slope",))
LEDGER = Schema("claims ledger (`mfbench claims-judge --out`)",
                text=("id", "paper", "version", "family", "where", "statement", "flag", "test", "claim", "published",
                      "artefact", "figure", "protocol", "unit", "margin_text", "budget", "verdict", "holds", "synthetic",
                      "what", "note"),
                real=("measured", "low", "high", "n", "margin", "p_hold", "p_hold_adj", "p_refute", "p_refute_adj",
                      "seeds_needed", "sd"), finite_unless=("",), key_exclude=(),
                pandas_types=True)
EVIDENCE_KINDS = (RUN, FIG5_TARGET_RUNS, MEMORY_SLOPES)


def _fail(path: str, why: str) -> ResultFileError:
    return ResultFileError(f"{path}: {why}")


def read_text(path: str, what: str = "result file") -> str:
    """The file's text, or one line saying why it cannot be a result file."""
    if not os.path.exists(path):
        raise _fail(path, f"no such {what}")
    if os.path.isdir(path):
        raise _fail(path, f"is a directory, not a {what}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise _fail(path, f"cannot read it: {e.strerror or type(e).__name__}") from None
    if not raw.strip():
        raise _fail(path, f"is empty; a {what} has a header line and rows (rerun the job that writes it)")
    nul = raw.find(bytes(1))
    if nul >= 0:
        raise _fail(path, f"is binary, not a {what} (a NUL byte at offset {nul})")
    try:
        text = raw.decode("utf-8-sig")  # a BOM (a spreadsheet's export) is dropped, not read as part of a name
    except UnicodeDecodeError as e:
        raise _fail(path, f"is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    return text


def _rows(path: str, text: str, what: str, sep: str) -> pd.DataFrame:
    """All cells as text ('' stays ''), every row checked to be complete."""
    if not text.endswith(("\n", "\r")):
        last = text.rsplit("\n", 1)[-1]
        raise _fail(path, f"is truncated: it does not end at a row end (last line {last[-40:]!r}); "
                          "rerun the job that writes it")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True))
    except csv.Error as e:
        raise _fail(path, f"is not a well-formed CSV ({e})") from None
    rows = [r for r in rows if r]  # blank lines
    header = rows[0]
    if len(set(header)) != len(header) or "" in header:
        dup = sorted({h for h in header if header.count(h) > 1 or h == ""})
        raise _fail(path, f"header names column(s) {dup} twice or blank; is it a {what}?")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise _fail(path, f"row {i} has {len(r)} fields, the header {len(header)}; the file is damaged")
    return pd.DataFrame(rows[1:], columns=header, dtype=object)


def _typed(path: str, df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    missing = [c for c in schema.columns if c not in df]
    if missing:
        raise _fail(path, f"missing column(s) {', '.join(missing)}: not a {schema.kind} "
                          f"(it has: {', '.join(df.columns[:12])}{', ...' if len(df.columns) > 12 else ''})")
    metric = df["metric"].astype(str) if "metric" in df else pd.Series("", index=df.index)
    may_be_nonfinite = metric.str.startswith(schema.finite_unless) if schema.finite_unless else metric.ne(metric)
    if schema is RUN:  # ... and only in a run that says it diverged (the runner's `diverged` row, value > 0)
        marked = (metric == "diverged") & (pd.to_numeric(df["value"], errors="coerce") > 0)
        may_be_nonfinite &= bool(marked.any())
    for c in [*schema.integer, *schema.real]:
        s = df[c].astype(str).str.strip()
        num = pd.to_numeric(s.where(s != "", "nan"), errors="coerce")
        spelled_nan = s.str.lower().isin(["", "nan", "inf", "-inf", "+inf", "infinity", "-infinity"])
        bad = num.isna() & ~spelled_nan
        if bad.any():
            i = int(bad.idxmax())
            raise _fail(path, f"row {i + 2} column {c!r} holds {df[c].iloc[i]!r}, not a number")
        nonfinite = ~num.map(math.isfinite)
        allowed = may_be_nonfinite if c == "value" or schema is not RUN else pd.Series(False, index=df.index)
        if c in schema.may_be_empty:
            allowed = allowed | (s == "")
        if (nonfinite & ~allowed).any():
            i = int((nonfinite & ~allowed).idxmax())
            where = f" (metric {metric.iloc[i]!r})" if c == "value" else ""
            ok = (f"; only the {'/'.join(schema.finite_unless)} of a run marked diverged (a `diverged` row) may be "
                  "nan/inf" if c == "value" and schema is RUN else "")
            raise _fail(path, f"row {i + 2} column {c!r} holds {df[c].iloc[i]!r}{where}, not a finite number{ok}")
        if c in schema.integer:
            whole = num[~nonfinite]
            if (whole != whole.round()).any():
                i = int((whole != whole.round()).idxmax())
                raise _fail(path, f"row {i + 2} column {c!r} holds {df[c].iloc[i]!r}, not a whole number")
        df[c] = num
    key = [c for c in df.columns if c not in schema.key_exclude]
    dup = df.duplicated(key, keep="first")
    if dup.any():
        i = int(dup.idxmax())
        first = int((df[key] == df.loc[i, key]).all(axis=1).idxmax())
        raise _fail(path, f"row {i + 2} repeats row {first + 2} (same run, epoch, split and metric); "
                          "a run's rows appear once: the file was appended to or concatenated")
    return df


def _check_sum(path: str, text: str) -> None:
    """A run CSV whose metadata records its checksum (`mfbench train` does) must match it: a digit
    changed, a row lost at a row end or appended is damage no parser can see."""
    from mfbench.files import content_sha256, meta_path

    try:
        with open(meta_path(path), encoding="utf-8") as f:
            want = json.load(f).get("csv_sha256")
    except (OSError, ValueError, AttributeError):
        return  # no metadata (or not an object): commands that need it read it with `read_meta`
    if want and content_sha256(text) != want:
        raise _fail(path, f"does not match the checksum its metadata records ({meta_path(path)}): the file was "
                          "changed or damaged after the run wrote it; rerun the run or restore the file")


def read_table(path: str, schema: Schema | None = None, *, what: str | None = None) -> pd.DataFrame:
    """One checked CSV (TSV by extension). Without a schema: any table, cells typed as pandas would
    type them ('' is NaN); with one: its columns present and typed, text columns keep ''."""
    what = what or (schema.kind if schema else "table CSV")
    sep = "\t" if path.endswith(".tsv") else ","
    text = read_text(path, what)
    df = _rows(path, text, what, sep)
    if schema is RUN:
        _check_sum(path, text)
    if schema is not None:
        df = _typed(path, df, schema)
    if schema is None or schema.pandas_types:
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    return df


def read_runs(paths: list[str], *, same: tuple[str, ...] = ("experiment",), experiments: set[str] | None = None,
              distinct_runs: bool = True, source: bool = False, schema: Schema = RUN) -> pd.DataFrame:
    """Run CSVs as one frame, each checked (see the module doc), plus across files: no file whose
    every row is already in another (a run given twice), with `distinct_runs` no run (RUN_KEYS) in
    two files at all (commands that tell runs apart by those columns; rules whose options are not
    columns, e.g. the forward-gradient variants, need False), one value of each `same` column over
    all files (a summary of one experiment, a tuning grid of one rule), and only `experiments` when
    named. `source`: add each row's file path."""
    if not paths:
        raise ResultFileError("no run CSVs given")
    frames, seen, first = [], {}, {}
    for p in paths:
        d = read_table(p, schema)
        if d.empty:
            raise _fail(p, f"holds no rows (only a header); a {schema.kind} has at least one")
        if experiments is not None and not set(d.experiment) <= experiments:
            raise _fail(p, f"holds runs of experiment {', '.join(sorted(set(d.experiment)))}; "
                           f"this command reads {', '.join(sorted(experiments))}")
        for c in same:
            vals = sorted(set(d[c].astype(str)))
            if len(vals) > 1:
                raise _fail(p, f"mixes runs of {c} {', '.join(vals)}; this command reads runs of one {c}")
            v, where = first.setdefault(c, (vals[0], p))
            if vals[0] != v:
                raise _fail(p, f"holds runs of {c} {vals[0]!r} but {where} of {v!r}; this command reads runs of one {c}")
        for run in d[RUN_KEYS].drop_duplicates().itertuples(index=False):
            if run in seen and (distinct_runs or _contained(d, frames[paths.index(seen[run])])):
                raise _fail(p, f"holds the same run as {seen[run]} ({run.experiment} {run.algorithm} seed {run.seed} "
                               f"lr={run.lr:g}); pass each run once")
            seen.setdefault(run, p)
        frames.append(d)
    if source:
        frames = [d.assign(source=p) for d, p in zip(frames, paths)]
    return pd.concat(frames, ignore_index=True)


def _contained(d: pd.DataFrame, other: pd.DataFrame) -> bool:
    """Every row of `d` is a row of `other` (a copy of a run, not another run with the same keys)."""
    cols = [c for c in d.columns if c in other.columns]
    m = d[cols].merge(other[cols].drop_duplicates(), how="left", on=cols, indicator=True)
    return bool((m["_merge"] == "both").all())


def read_evidence(paths: list[str]) -> pd.DataFrame:
    """The claims ledger's evidence: each file a run CSV or one of the summaries it judges from
    (EVIDENCE_KINDS), checked as that kind; text columns keep ''. A file of no known kind is
    refused, never silently matched to nothing."""
    frames, runs = [], []
    for p in paths:
        head = read_table(p)  # the file's own checks (empty, binary, truncated, ragged) first
        kind = next((k for k in EVIDENCE_KINDS if set(k.columns) <= set(head.columns)), None)
        if kind is None:
            near = max(EVIDENCE_KINDS, key=lambda k: len(set(k.columns) & set(head.columns)))
            others = " nor a ".join(k.kind for k in EVIDENCE_KINDS if k is not near)
            raise _fail(p, f"is not evidence the ledger knows: missing column(s) {', '.join(c for c in near.columns if c not in head)} "
                           f"of a {near.kind} (nor is it a {others})")
        if kind is RUN:
            runs.append(p)
        else:
            frames.append(read_table(p, kind))
    if runs:  # fg's variants share their run columns, so runs are told apart by content, not keys
        d = read_runs(runs, same=(), distinct_runs=False, source=True)
        # the epoch budget each run was configured with (its metadata): a run stopped early on
        # validation still counts at its budget, which the analysis plan's budget rule compares
        budget = {p: _budget_epochs(p) for p in runs}
        frames.append(d.assign(budget_epochs=d.pop("source").map(budget)))
    df = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].fillna("")
    return df


def _budget_epochs(csv_path: str) -> float:
    """Configured epochs of a run, from the metadata beside it; NaN when it has none (the ledger then
    takes the run's last epoch)."""
    from mfbench.files import meta_path

    if not os.path.exists(meta_path(csv_path)):
        return float("nan")
    epochs = read_meta(csv_path).get("config", {}).get("epochs")
    return float(epochs) if isinstance(epochs, int) and not isinstance(epochs, bool) else float("nan")


def read_json(path: str, what: str = "metadata JSON", *, keys: tuple[str, ...] = ()) -> dict:
    """A JSON object (run metadata, a tuning choice), with `keys` present; one line otherwise."""
    text = read_text(path, what)
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise _fail(path, f"is not valid JSON ({e}); is the {what} damaged?") from None
    if not isinstance(obj, dict):
        raise _fail(path, f"holds a JSON {type(obj).__name__}, not the object a {what} is")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise _fail(path, f"lacks {', '.join(missing)}: not a {what}")
    return obj


def read_meta(csv_path: str, config_keys: tuple[str, ...] = ()) -> dict:
    """The metadata JSON `mfbench train` wrote beside run CSV `csv_path`, with `config_keys` in its config."""
    from mfbench.files import meta_path

    path = meta_path(csv_path)
    meta = read_json(path, "run metadata JSON", keys=("config",) if config_keys else ())
    cfg = meta.get("config")
    missing = [k for k in config_keys if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise _fail(path, f"its config lacks {', '.join(missing)}: not the metadata of a `mfbench train` run")
    return meta
