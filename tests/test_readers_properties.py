"""Property tests (Hypothesis) of the one reader and the declared option ranges.

Every generated damage of a clean run CSV (cut mid-row, a cell turned to text, columns gone,
rows repeated, runs of another experiment mixed in, random bytes) must be refused in one line
naming the file, and every harmless re-encoding (BOM, CRLF, blank lines at the end) must read
to exactly the clean file's frame: never a traceback, never a different silent result.
A cut exactly at a row end leaves a valid, shorter file; it is not generated (see test_readers).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import results_fixtures as rf
from mfbench import argtypes, results_io

# CI budget: the whole file in well under two minutes on a 2-core machine.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _clean(algorithm: str, seed: int, epochs: int) -> str:
    return rf.run_frame(algorithm, seed, epochs=epochs).to_csv(index=False, na_rep="nan")


runs = st.builds(_clean, st.sampled_from(["bp", "mf"]), st.integers(0, 5), st.integers(1, 4))


@contextlib.contextmanager
def files(*texts: str | bytes):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, t in enumerate(texts):
            p = os.path.join(d, f"run{i}.csv")
            rf.put(p, t)
            paths.append(p)
        yield paths


def read(paths, **kw):
    return results_io.read_runs(paths, **kw)


def refused_naming(paths, bad: str, **kw) -> str:
    with pytest.raises(results_io.ResultFileError) as e:
        read(paths, **kw)
    msg = str(e.value)
    assert "\n" not in msg and bad in msg, msg
    return msg


def number_like(s: str) -> bool:
    t = s.strip().lower()
    if t in {"", "nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}:
        return True
    try:
        float(t)
        return True
    except ValueError:
        return pd.notna(pd.to_numeric(pd.Series([t]), errors="coerce")[0])


@FAST
@given(runs, st.data())
def test_cut_mid_row_is_refused(text, data):
    ends = {i + 1 for i, c in enumerate(text) if c == "\n"}
    cut = data.draw(st.integers(1, len(text) - 1).filter(lambda k: k not in ends and text[k - 1] != "\r"))
    with files(text[:cut]) as (p,):
        refused_naming([p], p)


NUMERIC = [*results_io.RUN.integer, *results_io.RUN.real]


@FAST
@given(runs, st.data(), st.text(min_size=1, max_size=12).filter(lambda s: not number_like(s)))
def test_text_in_a_numeric_column_is_refused(text, data, junk):
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    col = data.draw(st.sampled_from(NUMERIC))
    row = data.draw(st.integers(0, len(df) - 1))
    df.loc[row, col] = junk
    with files(df.to_csv(index=False)) as (p,):
        refused_naming([p], p)


@FAST
@given(runs, st.sets(st.sampled_from(results_io.RUN.columns), min_size=1, max_size=4))
def test_missing_columns_are_refused(text, gone):
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).drop(columns=sorted(gone))
    with files(df.to_csv(index=False)) as (p,):
        refused_naming([p], p)


@FAST
@given(runs, st.data())
def test_repeated_rows_are_refused(text, data):
    lines = text.splitlines(keepends=True)
    again = data.draw(st.lists(st.integers(1, len(lines) - 1), min_size=1, max_size=5))
    where = data.draw(st.integers(1, len(lines)))
    damaged = lines[:where] + [lines[i] for i in again] + lines[where:]
    with files("".join(damaged)) as (p,):
        refused_naming([p], p)


@FAST
@given(runs, st.data(), st.sampled_from(["fig4", "table5", "x"]))
def test_runs_of_another_experiment_are_refused(text, data, other):
    """Some or all rows of the second file relabelled: a summary of one experiment refuses it."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    rows = data.draw(st.sets(st.integers(0, len(df) - 1), min_size=1))
    df.loc[sorted(rows), "experiment"] = other
    df["seed"] = "99"  # another run, so only the experiment can be wrong
    with files(text, df.to_csv(index=False)) as (a, b):
        refused_naming([a, b], b, same=("experiment",))


@FAST
@given(runs, st.binary(min_size=1, max_size=16), st.data())
def test_random_bytes_are_refused_or_harmless(text, junk, data):
    """Bytes spliced in anywhere: refused in one line, or (e.g. a digit inside a number) the file
    still reads. What it may never do is raise anything but the one-line refusal."""
    raw = text.encode()
    at = data.draw(st.integers(0, len(raw)))
    with files(raw[:at] + junk + raw[at:]) as (p,):
        try:
            read([p])
        except results_io.ResultFileError as e:
            assert "\n" not in str(e) and p in str(e)


@FAST
@given(runs, st.sampled_from(["bom", "crlf", "blank-lines", "bom+crlf"]))
def test_harmless_encodings_read_the_same(text, how):
    damaged = text
    if "crlf" in how:
        damaged = damaged.replace("\n", "\r\n")
    if "bom" in how:
        damaged = "\ufeff" + damaged
    if how == "blank-lines":
        damaged += "\n\n"
    with files(text, damaged) as (a, b):
        pd.testing.assert_frame_equal(read([a]), read([b]))


# --- the declared ranges ----------------------------------------------------------------------------
RANGED = [(argtypes.CONFIDENCE, lambda v: 0 < v < 1), (argtypes.RATIO_TOLERANCE, lambda v: v >= 1),
          (argtypes.FRACTION, lambda v: 0 < v <= 1), (argtypes.positive, lambda v: v > 0)]
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 5).map(str),
                   st.text(max_size=8), st.sampled_from(["nan", "inf", "-inf", "1e309", "0", "1", "0.5", "1.0"]))


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(range(len(RANGED))))
def test_ranges_accept_exactly_their_interval(text, i):
    check, inside = RANGED[i]
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    ok = math.isfinite(v) and inside(v)
    try:
        got = check(text)
    except argparse.ArgumentTypeError as e:
        assert not ok, f"{text!r} refused: {e}"
        assert "\n" not in str(e) and (text in str(e) or repr(text) in str(e)), str(e)  # names the value
    else:
        assert ok and got == v, f"{text!r} accepted as {got!r}"


@settings(max_examples=200, deadline=None)
@given(values)
def test_min_n_accepts_integers_from_two(text):
    try:
        v = int(text)
    except ValueError:
        v = None
    try:
        got = argtypes.MIN_N(text)
    except argparse.ArgumentTypeError:
        assert v is None or v < 2
    else:
        assert v is not None and v >= 2 and got == v


@settings(max_examples=40, deadline=None)
@given(values)
def test_claims_judge_confidence_at_the_edge(text):
    """The CLI refuses a bad --confidence in one line naming the value, before reading anything."""
    from mfbench import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = cli.parser(["claims-judge"]).parse_args(["claims-judge", "/nonexistent.csv", "--out", "x.csv",
                                                            "--confidence", text])
        except SystemExit as e:
            assert e.code == 2
            lines = err.getvalue().splitlines()
            assert len(lines) == 1 and lines[0].startswith("mfbench: error:") and "--confidence" in lines[0]
            return
    assert 0 < args.confidence < 1 and math.isfinite(args.confidence)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=8), st.data(), st.sampled_from(["splice", "cut", "bom", "crlf"]))
def test_a_summary_command_refuses_or_gives_the_clean_result(junk, data, how):
    """`mfbench fig4-summary` over three runs, one of them damaged: exit 2 with one line naming it and
    no output, or exit 0 with exactly the clean runs' summary. Never a traceback."""
    from test_readers import run

    with tempfile.TemporaryDirectory() as d:
        paths = rf.clean_runs(d, algorithms=("mf",))
        clean_out, out = os.path.join(d, "clean.csv"), os.path.join(d, "new", "f4.csv")
        assert run(["fig4-summary", *paths, "--out", clean_out])[0] == 0
        raw = open(paths[1], "rb").read()
        if how == "splice":
            at = data.draw(st.integers(0, len(raw)))
            raw = raw[:at] + junk + raw[at:]
        elif how == "cut":
            raw = raw[:data.draw(st.integers(1, len(raw) - 2))]
        elif how == "bom":
            raw = "\ufeff".encode() + raw
        else:
            raw = raw.replace(b"\n", b"\r\n")
        rf.put(paths[1], raw)
        rc, output = run(["fig4-summary", *paths, "--out", out])
        assert "Traceback" not in output, output
        if rc == 0:
            assert open(out).read() == open(clean_out).read(), f"{how}: a different result without a word"
        else:
            lines = [x for x in output.splitlines() if x.startswith("mfbench: error:")]
            assert rc == 2 and len(lines) == 1 and paths[1] in lines[0], output
            assert not os.path.exists(os.path.dirname(out))
