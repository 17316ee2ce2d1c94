"""The claims ledger: registry validation, calibrated verdicts (simulated), the judge on tidy rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mfbench import claims
from mfbench.claims import ledger, stats
from mfbench.config import ConfigError

RNG_SEED = 20261123


# --- decisions (the calibration by simulation is tests/test_claims_calibration.py) -------------------
def _sim(**kw):
    return claims.parse({**GOOD, "select": {}, **kw})


@pytest.mark.parametrize("gap,claim,margin,expected", [(-2.0, "non-inferior", 0.5, "inferior"),
                                                       (2.0, "superior", 0.5, "superior"),
                                                       (0.0, "equivalent", 2.0, "equivalent")])
def test_paired_two_sd_gap_decided_in_most_trials_at_n10(gap, claim, margin, expected):
    rng = np.random.default_rng(RNG_SEED + 2)
    c = _sim(claim=claim, margin=margin, quantity="final_error")
    hits = sum(ledger.verdict_of(c, ledger.estimate(c, rng.normal(gap, 1.0, 10) + 5, np.full(10, 5.0))) == expected
               for _ in range(500))
    assert hits / 500 > 0.9


def test_no_label_shadows_another():
    """A CI wholly inside +-margin AND above 0 is 'superior' for a superiority claim (the old code said
    'equivalent' and the claim failed), 'equivalent' for an equivalence claim, 'non-inferior' for that one."""
    est = stats.Estimate(0.003, 0.001, 0.004, 10, center=0.003, se=0.0005, dof=9)
    for claim, label in (("superior", "superior"), ("equivalent", "equivalent"), ("non-inferior", "non-inferior")):
        assert ledger.verdict_of(_sim(claim=claim, margin=0.005), est) == label


def test_log_ratio_interval_covers_the_true_ratio_95_percent():
    rng = np.random.default_rng(RNG_SEED + 3)
    cover = 0
    for _ in range(3000):
        b = rng.lognormal(0.0, 0.3, 10)
        a = b * 2.0 * rng.lognormal(0.0, 0.1, 10)
        e = stats.log_ratio(a, b)
        cover += e.low <= 2.0 <= e.high
    assert 0.93 <= cover / 3000 <= 0.97


def test_ratio_verdicts():
    r = dict(test="ratio", quantity="epoch_time", a={"algorithm": "a"}, b={"algorithm": "b"})
    e = stats.log_ratio(np.full(10, 12.0) * np.exp(np.linspace(-0.05, 0.05, 10)), np.ones(10))
    assert ledger.verdict_of(_sim(**r, claim="greater"), e) == "greater"
    assert ledger.verdict_of(_sim(**r, claim="consistent", published={"value": 12.6, "unit": "x"}), e) == "consistent"
    assert ledger.verdict_of(_sim(**r, claim="consistent", published={"value": 30.0, "unit": "x"}), e) \
        == "not consistent"
    wide = stats.fitted_ratio(10.0, 1.0, 0.5, 1.0, dof=8)  # denominator indistinguishable from 0
    assert ledger.verdict_of(_sim(**r, claim="greater"), wide) == "inconclusive"


# --- the registry ---------------------------------------------------------------------------------
def test_shipped_registry_loads_and_covers_the_papers_claims():
    reg = claims.load()
    ids = {c.id for c in reg}
    assert len(ids) == len(reg)
    for needed in ("mf-t3-cifar10-cnn-ffpred-vs-bp", "mf-t3-mnist-mlp-bppred-vs-bp", "mf-fig3a-ratio",
                   "mf-fig4-mnist-convergence", "mf-fig5-mnist-depth", "mf-t4-bppred-equals-bp",
                   "mf-t4-ffpred-slower", "mf-t5-mnist-epoch-shorter", "ff-hinton-mnist-error", "ffs-mnist-speedup"):
        assert needed in ids
    assert all(set(c.protocols) == {"paper", "tuned"} for c in reg if c.id.endswith("-vs-bp"))


def _write(tmp_path, recs):
    import yaml

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(recs))
    return str(p)


GOOD = dict(id="x", paper="p", version="2501.09238v1", family="p/accuracy", where="T1", statement="s", flag="confirmed",
            artefact="table3",
            quantity="final_accuracy", test="paired", claim="non-inferior", a={"algorithm": "mf"},
            b={"algorithm": "bp"})


@pytest.mark.parametrize("change,field", [
    ({"flag": "maybe"}, "flag"), ({"test": "bayes"}, "test"), ({"claim": "consistent"}, "claim"),
    ({"quantity": "vibes"}, "quantity"), ({"b": {}}, "a/b"), ({"margin": -1}, "margin"),
    ({"protocols": ["fancy"]}, "protocols"), ({"colour": "red"}, "colour"), ({"statement": ""}, "statement"),
    ({"family": None}, "family"), ({"version": "v1 of 2501.09238"}, "version"), ({"version": "2501.09238"}, "version"),
    ({"test": "absolute", "claim": "reproduced", "b": {}, "published": {"value": 98.6, "unit": "percent"},
      "tolerance": {"value": 0.5, "unit": "s"}}, "tolerance"),
    ({"test": "absolute", "claim": "reproduced", "b": {}, "quantity": "epoch_time",
      "published": {"value": 3.0, "unit": "s"}}, "tolerance"),
    ({"quantity": "grad_cosine"}, "margin"), ({"budget": {"epochs": "fifty"}}, "budget"),
    ({"published": {"value": 0.8, "printed": "0.81"}}, "published"),
])
def test_malformed_entry_fails_at_load_naming_claim_and_field(tmp_path, change, field):
    with pytest.raises(ConfigError, match=rf"claim 'x', field '{field}'"):
        claims.load([_write(tmp_path, [{**GOOD, **change}])])


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(ConfigError, match="duplicate id"):
        claims.load([_write(tmp_path, [GOOD, GOOD])])


# --- the judge on tidy rows -----------------------------------------------------------------------
def _runs(dataset, algorithm, accs, pred_modes=("",), experiment="table3"):
    rows = []
    for seed, acc in enumerate(accs):
        for m in pred_modes:
            for ep, a in ((1, acc - 0.05), (2, acc)):
                rows.append(dict(experiment=experiment, dataset=dataset, arch="mlp", arch_detail="2x8",
                                 algorithm=algorithm, schedule="simultaneous", pred_mode=m or algorithm, depth=2,
                                 width=8, batch_size=4, lr=0.001, seed=seed, epoch=ep, phase="all", split="test",
                                 metric="accuracy", value=a, unit="fraction"))
    return rows


def _claim(**kw):
    return claims.parse({**GOOD, "select": {"dataset": "mnist", "arch": "mlp"},
                         "a": {"algorithm": "mf", "pred_mode": "ff"}, "b": {"algorithm": "bp"}, **kw})


def test_paired_judge_pairs_by_seed_and_names_n_and_margin():
    rng = np.random.default_rng(0)
    bp = 0.97 + rng.normal(0, 0.002, 6)
    ev = pd.DataFrame(_runs("mnist", "mf", bp + 0.004, ("ff",)) + _runs("mnist", "bp", bp))
    r = ledger.judge([_claim()], ev).iloc[0]
    assert r.n == 6 and r.margin == 0.005
    assert r.verdict == "non-inferior" and r.holds  # the claim's own label: no other label shadows it
    assert abs(r.measured - 0.004) < 1e-9  # paired: the shared per-seed noise cancels exactly
    ev2 = pd.DataFrame(_runs("mnist", "mf", bp + 0.02, ("ff",)) + _runs("mnist", "bp", bp))
    assert ledger.judge([_claim(claim="superior")], ev2).iloc[0].verdict == "superior"


def test_missing_and_too_few_runs_say_so_instead_of_failing():
    ev = pd.DataFrame(_runs("mnist", "mf", [0.9, 0.91], ("ff",)) + _runs("mnist", "bp", [0.9, 0.9]))
    led = ledger.judge([_claim(), _claim(id="y", select={"dataset": "cifar10", "arch": "mlp"})], ev)
    assert led.verdict.tolist() == ["n = 2: too few for a verdict", "no evidence yet"]


def test_synthetic_evidence_is_never_comparable():
    ev = pd.DataFrame(_runs("synthetic-mnist", "mf", [0.9, 0.91, 0.92], ("ff",))
                      + _runs("synthetic-mnist", "bp", [0.9, 0.9, 0.9]))
    r = ledger.judge([_claim()], ev).iloc[0]
    assert r.verdict == "not comparable (synthetic data)" and r.n == 3


def test_diverged_seed_is_left_out_of_both_sides_and_named():
    ev = _runs("mnist", "mf", [0.9, 0.91, 0.92, 0.93], ("ff",)) + _runs("mnist", "bp", [0.9] * 4)
    ev.append({**ev[0], "seed": 3, "split": "train", "metric": "loss", "value": float("nan")})
    r = ledger.judge([_claim()], pd.DataFrame(ev)).iloc[0]
    assert r.n == 3 and "seed(s) [3] diverged" in r.note


def test_a_run_that_diverged_before_any_evaluation_is_named():
    """As the runner writes it: no accuracy rows at all, one `diverged` row naming no prediction mode.
    A claim about one mode (pred_mode ff) still says which seed diverged."""
    ev = _runs("mnist", "mf", [0.9, 0.91, 0.92], ("ff",)) + _runs("mnist", "bp", [0.9] * 4)
    ev.append({**ev[0], "seed": 3, "pred_mode": "", "split": "train", "metric": "diverged", "value": 1.0,
               "unit": "flag"})
    r = ledger.judge([_claim()], pd.DataFrame(ev)).iloc[0]
    assert r.n == 3 and "seed(s) [3] diverged" in r.note


def test_absolute_claim_converts_published_percent_and_tuned_reads_its_own_experiment():
    accs = [0.986, 0.987, 0.985, 0.986]
    ev = pd.DataFrame(_runs("mnist", "ff", accs, ("goodness",)) +
                      _runs("mnist", "ff", [0.5] * 4, ("goodness",), experiment="table3_tuned"))
    c = claims.parse({**GOOD, "test": "absolute", "claim": "reproduced", "b": {}, "protocols": ["paper", "tuned"],
                      "a": {"algorithm": "ff", "pred_mode": "goodness"}, "select": {"dataset": "mnist"},
                      "published": {"value": 98.6, "unit": "percent"}})
    with pytest.raises(ConfigError, match="no validation split"):  # tuned selects on val; these runs have none
        ledger.judge_one(c, ev, "tuned", ledger.Settings())
    r = ledger.judge([c], ev[ev.experiment == "table3"]).iloc[0]
    assert r.verdict == "reproduced" and r.n == 4
    r2 = ledger.judge([claims.parse({**c.__dict__, "protocols": ["paper"],
                                     "published": {"value": 1.4, "unit": "percent"},
                                     "quantity": "final_error"})], ev).iloc[0]
    assert r2.verdict == "reproduced"


def test_shipped_registry_judges_an_empty_evidence_set_without_failing():
    led = ledger.judge(claims.load(), pd.DataFrame())
    assert set(led.verdict) == {"no evidence yet"}
    assert "no evidence yet" in ledger.render(led)


# --- the plan's promises, end to end -------------------------------------------------------------------
def _sff_runs(tmp_path, n, gain=0.003, sd=0.002):
    """Run CSVs for `sff-c10-r18-hybrid-vs-bp` with a true gain of exactly `gain` and paired sd exactly `sd`."""
    rng = np.random.default_rng(n)
    z = rng.normal(size=n)
    d = gain + sd * (z - z.mean()) / z.std(ddof=1)
    bp = 0.90 + rng.normal(0, 0.004, n)
    paths = []
    for alg, mode, accs in (("sff", "avg", bp + d), ("bp", "bp", bp)):
        for seed, acc in enumerate(accs):
            rows = [dict(experiment="sff", dataset="cifar10", arch="resnet18", arch_detail="resnet18", algorithm=alg,
                         schedule="simultaneous", pred_mode=mode, depth=4, width=0, batch_size=128, lr=0.001,
                         seed=seed, epoch=ep, phase="all", split="test", metric="accuracy", value=a, unit="fraction")
                    for ep, a in ((49, acc - 0.001), (50, acc))]  # the claim's budget: 50 epochs
            p = tmp_path / f"{alg}_seed{seed}.csv"
            pd.DataFrame(rows).to_csv(p, index=False)
            paths.append(str(p))
    return paths


@pytest.mark.parametrize("n", [10, 20, 40])
def test_a_true_gain_holds_through_claims_judge_at_every_n(tmp_path, n):
    """The issue's 'done' check: +0.30 pp at paired sd 0.2 pp is superior at n = 10, 20 and 40 (the old
    ledger said so at n = 5 only: 'equivalent' shadowed 'superior' once the interval fell inside +-margin)."""
    from mfbench import cli

    out = tmp_path / "claims.csv"
    assert cli.main(["claims-judge", *_sff_runs(tmp_path, n), "--out", str(out)]) == 0
    led = pd.read_csv(out)
    r = led[(led.id == "sff-c10-r18-hybrid-vs-bp") & (led.protocol == "paper")].iloc[0]
    assert r.verdict == "superior" and r.n == n and bool(r.holds)
    assert r.p_hold <= r.p_hold_adj < stats.ALPHA  # raw and Holm-adjusted p in the row


def test_evidence_at_another_budget_gets_no_verdict():
    rng = np.random.default_rng(1)
    bp = 0.97 + rng.normal(0, 0.002, 6)
    ev = pd.DataFrame(_runs("mnist", "mf", bp + 0.004, ("ff",)) + _runs("mnist", "bp", bp))  # 2 epochs
    r = ledger.judge([_claim(budget={"epochs": 50})], ev).iloc[0]
    assert r.verdict == "budget differs" and pd.isna(r.holds) and "2 epochs" in r.note and "50" in r.budget
    assert ledger.judge([_claim(budget={"epochs": 2})], ev).iloc[0].verdict == "non-inferior"
    ev["budget_epochs"] = 50  # the runs' metadata says they were configured for 50 (stopped early): at budget
    assert ledger.judge([_claim(budget={"epochs": 50})], ev).iloc[0].verdict == "non-inferior"


def test_inconclusive_says_underpowered_and_how_many_seeds_would_decide():
    rng = np.random.default_rng(2)
    bp = 0.97 + rng.normal(0, 0.002, 4)
    ev = pd.DataFrame(_runs("mnist", "mf", bp + np.array([0.004, -0.002, 0.003, -0.001]), ("ff",))
                      + _runs("mnist", "bp", bp))  # +0.1 pp, sd 0.28 pp: far too wide at n = 4
    r = ledger.judge([_claim(claim="superior")], ev).iloc[0]
    assert r.verdict == "underpowered" and r.seeds_needed > 4
    assert f"~{int(r.seeds_needed)} paired seeds would decide it" in r.note
    assert f"underpowered (~{int(r.seeds_needed)} seeds)" in ledger.render(ledger.judge([_claim(claim="superior")], ev))


def test_holm_within_a_family_and_the_header_states_the_error_rate():
    """Two claims on the same evidence in one family: each row's adjusted p is Holm's of the pair;
    a claim in its own family is not adjusted."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    bp = 0.97 + rng.normal(0, 0.002, 8)
    ev = pd.DataFrame(_runs("mnist", "mf", bp + 0.003 + rng.normal(0, 0.002, 8), ("ff",)) + _runs("mnist", "bp", bp))
    cs = [_claim(id="s", claim="superior"), _claim(id="n", claim="non-inferior"),
          _claim(id="alone", claim="superior", family="other")]
    led = ledger.judge(cs, ev).set_index("id")
    want = multipletests(led.loc[["s", "n"], "p_hold"], method="holm")[1]
    assert np.allclose(led.loc[["s", "n"], "p_hold_adj"], want)
    assert led.loc["alone", "p_hold_adj"] == led.loc["alone", "p_hold"]
    h = ledger.header(led.reset_index())
    assert "3 rows judged in 2 families" in h and "0.05 families" in h


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv"])
def test_claims_prints_counts_then_one_line_per_claim(tmp_path, fmt, capsys):
    from mfbench import cli

    out = tmp_path / "claims.csv"
    assert cli.main(["claims-judge", *_sff_runs(tmp_path, 10), "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["claims", str(out), "--format", fmt]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "sff-c10-r18-hybrid-vs-bp" in ln and "paper" in ln)
    assert "superior" in line and "n=10" in line
    if fmt == "text":
        assert "scalable-ff 2501.03176v1" in text and max(len(ln) for ln in text.splitlines()[3:]) <= 160


def test_claims_plan_prints_seeds_for_80pct_power_from_pilot_runs(tmp_path, capsys):
    """A superiority claim planned at its margin (0.5 pp) from a pilot's paired sd of 0.2 pp: statsmodels'
    one-sided t-test power at alpha 0.025 gives the seeds; the plan never asks for fewer than 10."""
    from statsmodels.stats.power import TTestPower

    from mfbench import cli

    assert cli.main(["claims", "plan", *_sff_runs(tmp_path, 6), "--format", "csv"]) == 0
    tab = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    r = tab[(tab.id == "sff-c10-r18-hybrid-vs-bp") & (tab.protocol == "paper")].iloc[0]
    want = TTestPower().solve_power(effect_size=0.005 / r.pilot_sd, alpha=0.025, power=0.8, alternative="larger")
    assert r.seeds_for_80pct == int(np.ceil(want)) and r.seeds_planned == max(10, r.seeds_for_80pct)
    assert abs(r.pilot_sd - 0.002) < 1e-9 and r.pilot_n == 6


def test_claims_plan_without_pilot_runs_is_one_clear_error(capsys):
    from mfbench import cli

    assert cli.main(["claims", "plan"]) == 2
    assert "claims plan needs pilot evidence" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["claims", "full-mnist"])
def test_committed_cpu_reference_rejudges_row_for_row(name):
    """results/reference/cpu/<name>/claims.csv is what the ledger says of its own runs (its COMMAND.md; a
    search's trial runs are not evidence)."""
    import glob
    import os

    from mfbench.experiments.claims import read_evidence

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), f"results/reference/cpu/{name}")
    runs = [f for f in sorted(glob.glob(f"{root}/runs/**/seed*.csv", recursive=True)) if "/trials/" not in f]
    led = ledger.judge(claims.load(), read_evidence(runs))
    ref = pd.read_csv(f"{root}/claims.csv")
    assert led.id.tolist() == ref.id.tolist() and led.verdict.tolist() == ref.verdict.tolist()
    assert np.allclose(led.measured.astype(float), ref.measured.astype(float), equal_nan=True)
    if name == "claims":
        assert set(led.verdict) == {"no evidence yet", "budget differs"}  # 5 of the claims' 50 epochs: no verdict


def _trace(algorithm, seed, values_by_step, metric="held_activation_bytes"):
    """A memory trace (Fig. 1/2) as `memory-trace` writes it: one row per sample and metric."""
    rows, i = [], 0
    for step, vals in values_by_step.items():
        for v in vals:
            rows.append(dict(experiment="fig1_2", dataset="mnist", arch="mlp", arch_detail="5x2000",
                             algorithm=algorithm, schedule="simultaneous", pred_mode="", depth=5, width=2000,
                             batch_size=30000, lr=0.001, seed=seed, epoch=1, phase="all", split="train",
                             metric=metric, value=float(v), unit="bytes", step=step, sample=i, event="forward fc"))
            i += 1
    return rows


def test_memory_trace_cv_is_sd_over_mean_after_the_first_step_on_the_allocator_where_there_is_one():
    from mfbench.claims.quantities import QUANTITIES

    q = QUANTITIES["memory_trace_cv"]
    rows = pd.DataFrame(_trace("mf", 0, {1: [100, 900], 2: [10, 30], 3: [10, 30]}))
    assert q(rows, "paper").loc[0] == pytest.approx(10 / 20)  # step 1 (optimizer state allocated) left out
    cuda = pd.DataFrame(_trace("mf", 0, {1: [1], 2: [4, 4], 3: [4, 4]}, metric="allocated_bytes")
                        + _trace("mf", 0, {1: [1], 2: [1, 9], 3: [1, 9]}))
    assert q(cuda, "paper").loc[0] == 0.0  # the allocator's trace, not the held activations, when both exist
    assert q(pd.DataFrame(_runs("mnist", "mf", [0.9])), "paper").empty  # no trace: no value


def test_memory_even_claim_judged_from_traces_paired_by_seed():
    """MF's trace half as uneven as BP's in every seed: the ratio of CVs is below 1, the claim holds."""
    c = next(c for c in claims.load() if c.id == "mf-fig1-2-memory-even")
    rng = np.random.default_rng(3)
    ev = []
    for seed in range(5):
        base = rng.uniform(50, 150, 8)
        ev += _trace("bp", seed, {1: [0], 2: base, 3: base})
        ev += _trace("mf", seed, {1: [0], 2: 100 + (base - 100) / 2, 3: 100 + (base - 100) / 2})
    led = ledger.judge([c], pd.DataFrame(ev))
    r = led.iloc[0]
    assert r.verdict == "less" and r.n == 5 and r.measured < 1


@pytest.mark.parametrize("width", [80, 60, 160])
def test_terminal_view_keeps_every_claim_id_whole_at_any_width(width):
    """At 80 columns the old view cut ids to 12 characters; an id is what a reader looks up, so it stays
    whole and the verdict / measurement wrap below it instead. Nothing else exceeds the width."""
    rng = np.random.default_rng(1)
    bp = 0.97 + rng.normal(0, 0.002, 4)
    ev = pd.DataFrame(_runs("mnist", "mf", bp + 0.004, ("ff",)) + _runs("mnist", "bp", bp))
    long_id = "mfv2-fashion-mnist-mlp-competitive-with-ff-variant"
    led = ledger.judge([_claim(id=long_id), _claim(id="short")] + claims.load()[:3], ev)
    text = ledger.render(led, width=width)
    body = text.split("\n\n")[-1].splitlines()
    for cid in led.id:
        assert any(ln.split(" ")[0] == cid for ln in body), (cid, text)
    assert all(len(ln) <= width for ln in body)
    assert "non-inferior" in text and "n=4" in text  # the verdict and the measurement are still there


def _traces_to(value: float, printed: str | None, rows: pd.Series) -> bool:
    """`value` is a row of the study's reference data, 100 minus one (error <-> accuracy), or a ratio, mean
    or geometric mean of two (derived anchors), at the precision the record prints it."""
    v = rows.to_numpy(float)
    cands = [v, 100 - v]
    if len(v):
        a, b = np.meshgrid(v, v)
        b = np.where(b == 0, np.nan, b)  # a 0.00 train error divides nothing
        cands += [(a / b).ravel(), ((a + b) / 2).ravel(), np.sqrt(a * b).ravel()]
    text = printed or repr(float(value))
    digits = len(text.split(".")[1]) if "." in text else 0
    return bool(np.any(np.isclose(np.round(np.concatenate(cands), digits), round(float(value), digits))))


def test_every_published_value_traces_to_the_reference_data_in_the_repository():
    """Each published number a claim quotes has its source inside the repository: a row of
    mfbench/reference.csv of the same study (with its source and flag), or a declared derivation of rows.
    A ratio of exactly 1 is a claim of equality in words ('similar speed', 'equal to BP'): no number to trace."""
    from mfbench import reference

    ref = reference.load()
    untraced = []
    for c in claims.load():
        p = c.published
        for k in ("value", "a", "b"):
            if k not in p or (k == "value" and p.get("unit") == "x" and float(p[k]) == 1.0):
                continue
            if not _traces_to(p[k], p.get("printed") if k == "value" else None, ref[ref.study == c.paper].value):
                untraced.append(f"{c.id}: {k} = {p[k]}")
    assert not untraced, "published values without a source row in mfbench/reference.csv:\n" + "\n".join(untraced)


def test_every_version_says_whether_it_was_checked_against_its_text(tmp_path):
    """Each quoted version has an entry (what text it is, checked yes / partly / no, and how) and each claim
    carries it; an unknown version fails at load in one line naming the claim and the field."""
    for c in claims.load():
        assert c.provenance.startswith("version checked against the text: ") and len(c.provenance) > 60, c.id
    ren = next(c for c in claims.load() if c.version == "2210.03310v3")
    assert ": no." in ren.provenance and "OpenReview" in ren.provenance
    with pytest.raises(ConfigError, match=r"claim 'x', field 'version': '2501.09238v9' has no entry in "):
        claims.load([_write(tmp_path, [{**GOOD, "version": "2501.09238v9"}])])
    with pytest.raises(ConfigError, match=r"claim 'x', field 'provenance': comes from the version's entry"):
        claims.load([_write(tmp_path, [{**GOOD, "provenance": "read it"}])])
    bad = tmp_path / "versions.yaml"
    bad.write_text("2501.09238v1: {text: t, checked: maybe, provenance: p}\n")
    with pytest.raises(ConfigError, match=r"key 'checked': 'maybe' not allowed; allowed: yes, partly, no"):
        claims.versions(str(bad))
