"""Every command that reads results, fed each kind of bad input: exit 2, one line naming the file
(or the value), no traceback, no output left behind and an earlier output intact. The clean files
are made by hand in the runner's format (tests/results_fixtures.py): no training, seconds in all.
"""
from __future__ import annotations

import errno
import glob
import os
import shutil

import pandas as pd
import pytest

import results_fixtures as rf

OUTS = {  # command -> its output flags and the file names they get (under {new}/ or {old}/)
    "table3": [("--out", "t3.csv"), ("--figure", "t3.png")],
    "table5": [("--out", "t5.csv"), ("--figure", "t5.png")],
    "table4": [("--out", "t4.csv"), ("--figure", "t4.png")],
    "fig4-summary": [("--out", "f4.csv")],
    "fig5-summary": [("--out", "f5.csv"), ("--target-out", "f5t.csv"), ("--target-runs-out", "f5r.csv")],
    "tune-select": [("--out", "choice.json"), ("--report", "trials.csv")],
    "claims-judge": [("--out", "claims.csv"), ("--html", "claims.html")],
    "table-html": [("--out", "t.html")],
}
EXTRA = {"table5": ["--skip-epochs", "1"], "fig5-summary": ["--target", "synthetic-mnist=0.6"],
         "tune-select": ["--primary-mode", "ff"]}


def written(cmd: str) -> list[str]:
    """Every file the command writes: a figure's PDF beside its PNG."""
    names = [n for _, n in OUTS[cmd]]
    return names + [n.replace(".png", ".pdf") for n in names if n.endswith(".png")]


run = rf.run_cli


def inputs(cmd: str, d: str) -> list[str]:
    if cmd == "tune-select":
        return rf.grid_runs(d)
    if cmd == "table4":
        return rf.latency_runs(d)
    paths = rf.clean_runs(d)
    if cmd == "table-html":
        return [rf.write_run(os.path.join(d, "table.csv"), pd.read_csv(paths[0]))]
    return paths


def argv(cmd: str, paths: list[str], out_dir: str) -> list[str]:
    a = [cmd, *paths, *EXTRA.get(cmd, [])]
    for flag, name in OUTS[cmd]:
        a += [flag, os.path.join(out_dir, name)]
    return a


def refused(rc, output: str, *fragments: str) -> None:
    assert rc == 2, f"exit status {rc}, expected 2:\n{output[-2000:]}"
    assert "Traceback" not in output, output[-2000:]
    errors = [x for x in output.splitlines() if x.startswith("mfbench: error:")]
    assert len(errors) == 1, f"not one error line:\n{output[-2000:]}"
    for f in fragments:
        assert f in errors[0], f"{f!r} not in {errors[0]!r}"


def no_outputs(cmd: str, tmp: str) -> None:
    assert not os.path.exists(os.path.join(tmp, "new")), f"{cmd} left its output directory: {os.listdir(tmp)}"
    for name in written(cmd):
        assert open(os.path.join(tmp, "old", name)).read() == "EARLIER", f"{cmd} changed the earlier {name}"
    leftovers = glob.glob(os.path.join(tmp, "**", ".*.tmp"), recursive=True, include_hidden=True)
    assert not leftovers, leftovers


def earlier(cmd: str, tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "old"))
    for name in written(cmd):
        open(os.path.join(tmp, "old", name), "w").write("EARLIER")


def attempt(cmd: str, paths: list[str], tmp: str, *fragments: str, extra=()):
    """The command refuses, both writing into a new directory and over earlier outputs."""
    for out_dir in ("new", "old"):
        rc, output = run(argv(cmd, paths, os.path.join(tmp, out_dir)) + list(extra))
        refused(rc, output, *fragments)
    no_outputs(cmd, tmp)


RUN_COMMANDS = ["table3", "table4", "table5", "fig4-summary", "fig5-summary", "tune-select", "claims-judge"]
ALL = RUN_COMMANDS + ["table-html"]


def test_clean_inputs_succeed(tmp_path):
    """The baseline every refusal is measured against: each command runs on the clean files."""
    for cmd in ALL:
        d = tmp_path / cmd
        d.mkdir()
        rc, output = run(argv(cmd, inputs(cmd, str(d)), str(d / "new")))
        assert rc == 0, f"{cmd}: {output[-2000:]}"
        for name in written(cmd):
            assert (d / "new" / name).exists(), f"{cmd} did not write {name}"


@pytest.mark.parametrize("kind", sorted(rf.BAD_RUN))
@pytest.mark.parametrize("cmd", RUN_COMMANDS + ["table-html"])
def test_bad_input_file(cmd, kind, tmp_path):
    damage, why = rf.BAD_RUN[kind]
    if cmd == "table-html" and kind in ("value-text", "missing-column", "wrong-columns", "duplicated-rows",
                                        "inf-epoch-time", "header-only", "nan-loss-unmarked"):
        pytest.skip("table-html renders any table: its cells carry no schema")
    if cmd == "table4" and kind in ("inf-epoch-time", "nan-loss-unmarked"):  # latency rows: no epoch time, no loss
        damage, why = rf.inf_latency, "not a finite number"
    tmp = str(tmp_path)
    earlier(cmd, tmp)
    paths = inputs(cmd, tmp)
    damage(paths[0])
    attempt(cmd, paths, tmp, paths[0], why)


@pytest.mark.parametrize("cmd", RUN_COMMANDS)
def test_same_run_twice(cmd, tmp_path):
    tmp = str(tmp_path)
    earlier(cmd, tmp)
    paths = inputs(cmd, tmp)
    copy = os.path.join(tmp, "copy.csv")
    shutil.copyfile(paths[0], copy)
    shutil.copyfile(paths[0].replace(".csv", ".meta.json"), copy.replace(".csv", ".meta.json"))
    attempt(cmd, paths + [copy], tmp, copy, "same run")


@pytest.mark.parametrize("kind", ["mixed-experiment", "other-experiment"])
@pytest.mark.parametrize("cmd", ["table3", "table5", "fig4-summary", "fig5-summary", "tune-select"])
def test_runs_of_another_experiment(cmd, kind, tmp_path):
    tmp = str(tmp_path)
    earlier(cmd, tmp)
    paths = inputs(cmd, tmp)
    target = paths[-1]
    (rf.mixed_experiment if kind == "mixed-experiment" else rf.other_experiment)(target)
    attempt(cmd, paths, tmp, target, "experiment")


def test_tune_select_refuses_two_rules(tmp_path):
    tmp = str(tmp_path)
    earlier("tune-select", tmp)
    paths = rf.grid_runs(tmp, "mf") + rf.grid_runs(tmp, "bp")
    attempt("tune-select", paths, tmp, "algorithm", "bp")


@pytest.mark.parametrize("meta", ["missing", "empty", "not-json", "list", "no-config", "no-lr", "directory"])
def test_tune_select_metadata(meta, tmp_path):
    tmp = str(tmp_path)
    earlier("tune-select", tmp)
    paths = rf.grid_runs(tmp)
    m = paths[0].replace(".csv", ".meta.json")
    os.remove(m)
    if meta == "empty":
        open(m, "w").close()
    elif meta == "not-json":
        open(m, "w").write('{"config": {"lr": 0.0')
    elif meta == "list":
        open(m, "w").write("[1, 2]\n")
    elif meta == "no-config":
        open(m, "w").write('{"device": "cpu"}\n')
    elif meta == "no-lr":
        open(m, "w").write('{"config": {"seed": 0, "weight_decay": 0}}\n')
    elif meta == "directory":
        os.makedirs(m)
    attempt("tune-select", paths, tmp, m)


def test_table5_damaged_metadata(tmp_path):
    tmp = str(tmp_path)
    earlier("table5", tmp)
    paths = inputs("table5", tmp)
    m = paths[0].replace(".csv", ".meta.json")
    open(m, "w").write("{not json")
    attempt("table5", paths, tmp, m, "not valid JSON")


@pytest.mark.parametrize("kind", sorted(rf.FINE_RUN))
@pytest.mark.parametrize("cmd", ALL)
def test_harmless_encodings_read_the_same(cmd, kind, tmp_path):
    """A BOM or CRLF line ends (a spreadsheet's or an editor's save) give the clean file's result."""
    results = []
    for variant in ("clean", kind):
        d = tmp_path / variant
        d.mkdir()
        paths = inputs(cmd, str(d))
        if variant != "clean":
            for p in paths:
                rf.FINE_RUN[kind](p)
        rc, output = run(argv(cmd, paths, str(d / "new")))
        assert rc == 0, output[-2000:]
        csvs = [n for n in written(cmd) if n.endswith((".csv", ".json"))]
        results.append([open(d / "new" / n).read().replace(str(d), "D") for n in csvs])
    assert results[0] == results[1]


# --- outputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", ALL)
def test_output_over_an_input_is_refused(cmd, tmp_path):
    tmp = str(tmp_path)
    paths = inputs(cmd, tmp)
    before = open(paths[0]).read()
    a = argv(cmd, paths, os.path.join(tmp, "new"))
    a[a.index("--out") + 1] = paths[0]
    rc, output = run(a)
    refused(rc, output, paths[0], "inputs")
    assert open(paths[0]).read() == before
    assert not os.path.exists(os.path.join(tmp, "new"))


@pytest.mark.parametrize("cmd", ["table3", "tune-select", "fig5-summary"])
def test_output_over_an_inputs_metadata_is_refused(cmd, tmp_path):
    tmp = str(tmp_path)
    paths = inputs(cmd, tmp)
    a = argv(cmd, paths, os.path.join(tmp, "new"))
    flag = OUTS[cmd][-1][0]
    a[a.index(flag) + 1] = paths[0].replace(".csv", ".meta.json")
    rc, output = run(a)
    refused(rc, output, "inputs")


@pytest.mark.parametrize("how", ["directory", "parent-is-a-file", "name-too-long", "same-twice", "empty"])
@pytest.mark.parametrize("cmd", ALL)
def test_bad_output_path(cmd, how, tmp_path):
    tmp = str(tmp_path)
    paths = inputs(cmd, tmp)
    a = argv(cmd, paths, os.path.join(tmp, "new"))
    flag = OUTS[cmd][-1][0]
    i = a.index(flag) + 1
    if how == "directory":
        os.makedirs(os.path.join(tmp, "adir"))
        a[i], frag = os.path.join(tmp, "adir"), "is a directory"
    elif how == "parent-is-a-file":
        open(os.path.join(tmp, "afile"), "w").close()
        a[i], frag = os.path.join(tmp, "afile", "x.csv"), "is a file"
    elif how == "name-too-long":
        a[i], frag = os.path.join(tmp, "new", "n" * 250 + ".csv"), "too long"
    elif how == "same-twice":
        if len(OUTS[cmd]) < 2:
            pytest.skip("one output")
        a[i], frag = a[a.index("--out") + 1], "its own path"
    else:
        a[i], frag = "", "empty"
    rc, output = run(a)
    refused(rc, output, frag)
    assert not os.path.exists(os.path.join(tmp, "new")), "a refused command left its output directory"


@pytest.mark.parametrize("cmd", ["table3", "fig5-summary", "claims-judge", "tune-select"])
def test_disk_full_keeps_earlier_outputs(cmd, tmp_path, monkeypatch):
    """ENOSPC on the command's last write: one line, every earlier output as it was, no temp file."""
    from mfbench import files

    tmp = str(tmp_path)
    earlier(cmd, tmp)
    paths = inputs(cmd, tmp)
    real_replace, calls = os.replace, []

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("_csv", "_json"):
        real = getattr(files, name)

        def staged(obj, tmp_file, *rest, _real=real):
            calls.append(tmp_file)
            if len(calls) == len([n for n in written(cmd) if n.endswith((".csv", ".json"))]):
                full()
            return _real(obj, tmp_file, *rest)
        monkeypatch.setattr(files, name, staged)
    monkeypatch.setattr(os, "replace", real_replace)
    rc, output = run(argv(cmd, paths, os.path.join(tmp, "old")))
    refused(rc, output, "no space left")
    no_outputs(cmd, tmp)


# --- parameters: refused at the edge, before anything is read ------------------------------------------
BAD_PARAMS = [
    ("claims-judge", ["--confidence", "1.5"], "1.5 is not in (0, 1)"),
    ("claims-judge", ["--confidence", "0"], "0 is not in (0, 1)"),
    ("claims-judge", ["--confidence", "nan"], "not a finite number"),
    ("claims-judge", ["--min-n", "0"], "0 is not >= 2"),
    ("claims-judge", ["--min-n", "1"], "1 is not >= 2"),
    ("claims-judge", ["--ratio-tolerance", "0.5"], "0.5 is not >= 1"),
    ("claims-judge", ["--ratio-tolerance", "inf"], "not a finite number"),
    ("claims-judge", ["--margin", "fraction=nan"], "not a finite number"),
    ("claims-judge", ["--margin", "fraction=-0.01"], "not a positive number"),
    ("claims-judge", ["--margin", "fraction"], "must look like KEY=VALUE"),
    ("table5", ["--skip-epochs", "-1"], "-1 is not >= 0"),
    ("fig5-summary", ["--target", "synthetic-mnist=1.5"], "1.5 is not in (0, 1]"),
    ("fig5-summary", ["--target", "synthetic-mnist=0"], "0 is not in (0, 1]"),
]


@pytest.mark.parametrize("cmd,extra,msg", BAD_PARAMS, ids=[f"{c}{' '.join(e)}" for c, e, _ in BAD_PARAMS])
def test_bad_parameter(cmd, extra, msg, tmp_path):
    tmp = str(tmp_path)
    earlier(cmd, tmp)
    rc, output = run(argv(cmd, [os.path.join(tmp, "never-read.csv")], os.path.join(tmp, "new")) + extra)
    refused(rc, output, msg, extra[0])  # the value and its range, the option: before the (missing) input is read
    no_outputs(cmd, tmp)


# --- claims-judge evidence and the ledger `mfbench claims` prints ----------------------------------------
def test_claims_judge_refuses_unknown_evidence(tmp_path):
    tmp = str(tmp_path)
    earlier("claims-judge", tmp)
    paths = inputs("claims-judge", tmp)
    other = os.path.join(tmp, "other.csv")
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(other, index=False)
    attempt("claims-judge", paths + [other], tmp, other, "not evidence the ledger knows")


def test_claims_judge_reads_runs_as_before():
    """The checked reader gives the ledger what a plain pandas read gave it: the same verdicts on the
    committed reference runs (whatever the ledger's statistics are at the time)."""
    from mfbench import claims
    from mfbench.claims import ledger as lg

    root = os.path.dirname(os.path.dirname(os.path.abspath(rf.__file__)))
    runs = sorted(glob.glob(os.path.join(root, "results", "reference", "cpu", "claims", "runs", "**", "*.csv"),
                            recursive=True))
    assert runs
    plain = pd.concat([pd.read_csv(p) for p in runs], ignore_index=True)  # the reading before the reader
    for c in plain.columns:
        if plain[c].dtype == object or str(plain[c].dtype).startswith("str"):
            plain[c] = plain[c].fillna("")
    from mfbench import results_io

    new = lg.judge(claims.load(), results_io.read_evidence(runs))
    old = lg.judge(claims.load(), plain)
    pd.testing.assert_frame_equal(new[["id", "protocol", "verdict", "n"]], old[["id", "protocol", "verdict", "n"]])
    assert (new.verdict != "no evidence yet").any(), "no claim judged: the comparison says nothing"


def ledger(tmp: str) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(rf.__file__)))
    p = os.path.join(tmp, "claims.csv")
    shutil.copyfile(os.path.join(root, "results", "reference", "cpu", "claims", "claims.csv"), p)
    return p


@pytest.mark.parametrize("kind", ["empty", "binary", "not-utf8", "truncated-mid-value", "ragged-row", "directory",
                                  "missing"])
def test_claims_show_bad_ledger(kind, tmp_path):
    p = ledger(str(tmp_path))
    damage, why = rf.BAD_RUN[kind]
    if kind == "not-utf8":
        rf.put(p, rf.text(p).encode("utf-8") + "caf\u00e9\n".encode("latin-1"))
    else:
        damage(p)
    rc, output = run(["claims", p])
    refused(rc, output, p, why if kind != "not-utf8" else "not UTF-8")


def test_claims_show_ledger_without_verdicts(tmp_path):
    p = ledger(str(tmp_path))
    pd.read_csv(p, keep_default_na=False, dtype=str).drop(columns=["verdict"]).to_csv(p, index=False)
    rc, output = run(["claims", p])
    refused(rc, output, p, "verdict")


def test_claims_into_a_closed_pipe_is_quiet(tmp_path):
    """`mfbench claims | head -1`: no BrokenPipeError noise, the status a SIGPIPE'd tool gives."""
    import subprocess
    import sys

    p = ledger(str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(rf.__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(f"{sys.executable} -m mfbench.cli claims {p} | head -1; echo status ${{PIPESTATUS[0]}} >&2",
                       shell=True, executable="/bin/bash", capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.startswith("== "), r.stdout
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert r.stderr.strip().endswith(("status 141", "status 0")), r.stderr


@pytest.mark.parametrize("kind", ["empty", "binary", "not-utf8", "truncated-mid-value", "ragged-row", "directory",
                                  "missing", "header-only"])
@pytest.mark.parametrize("cmd", ["fig4-figure", "fig5-figure"])
def test_figure_from_a_bad_summary(cmd, kind, tmp_path):
    """The figure commands read the summaries the way the summaries read runs."""
    tmp = str(tmp_path)
    earlier("fig5-summary", tmp)
    paths = inputs("fig5-summary", tmp)
    rc, output = run(argv("fig5-summary", paths, tmp))
    assert rc == 0, output
    summary = os.path.join(tmp, "f5.csv")
    rf.BAD_RUN[kind][0](summary)
    outs = [os.path.join(tmp, "new", "f.png")]
    a = [cmd, summary, "--out", outs[0]]
    if cmd == "fig5-figure":
        a = [cmd, summary, os.path.join(tmp, "f5t.csv"), "--out", outs[0], "--target-out", os.path.join(tmp, "new", "t.png")]
    rc, output = run(a)
    refused(rc, output, summary)
    assert not os.path.exists(os.path.join(tmp, "new"))


@pytest.mark.parametrize("how", ["digit-changed", "cut-at-a-row-end", "row-appended", "bom-and-crlf"])
@pytest.mark.parametrize("cmd", ["table3", "fig4-summary", "claims-judge"])
def test_checksum_catches_what_no_parser_sees(cmd, how, tmp_path):
    """Runs written as the runner writes them (CSV + metadata with the CSV's checksum): a changed
    digit, a file cut exactly at a row end or a row added is refused; a BOM or CRLF is not damage."""
    from mfbench import files

    tmp = str(tmp_path)
    earlier(cmd, tmp)
    paths = []
    for a in ("bp", "mf"):
        for s in (0, 1, 2):
            p = os.path.join(tmp, f"{a}{s}.csv")
            files.write_csv_with_json(rf.run_frame(a, s), p, {"config": {"seed": s}}, p.replace(".csv", ".meta.json"),
                                      na_rep="nan")
            paths.append(p)
    p = paths[1]
    s = rf.text(p)
    if how == "digit-changed":
        s = s.replace("0.71", "0.77", 1)
    elif how == "cut-at-a-row-end":
        s = s[: s.rstrip("\n").rindex("\n") + 1]
    elif how == "row-appended":
        lines = s.splitlines(keepends=True)
        s = s + lines[-1].replace(",1,", ",9,", 1)
    if how == "bom-and-crlf":
        rf.put(p, "\ufeff" + s.replace("\n", "\r\n"))
        rc, output = run(argv(cmd, paths, os.path.join(tmp, "new")))
        assert rc == 0, output[-2000:]
        return
    assert s != rf.text(p), "the damage changed nothing"
    rf.put(p, s)
    attempt(cmd, paths, tmp, p, "checksum")
