"""Mono-Forward v2's MLP-Mixer claim on PathMNIST: MedMNIST's file layout, timm's Mixer as a layer stack,
MF's locality on it, the artefact's wiring, and the claims' quantity."""
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import trained_beside_a_changed_copy

from mfbench import algorithms, data, models, run
from mfbench.config import ConfigError, RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"train": 60, "val": 20, "test": 30}


def write_npz(path, drop=(), **replace):
    """A small file of MedMNIST's layout: image i of a split has the constant colour (3i, 3i+1, 3i+2) % 250,
    so a mixed-up channel axis shows; labels (N, 1) uint8 in 0..8."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in SIZES.items():
        col = (3 * np.arange(n)[:, None] + np.arange(3)[None, :]) % 250
        arrays[f"{split}_images"] = np.broadcast_to(col[:, None, None, :], (n, 28, 28, 3)).astype(np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 9, (n, 1)).astype(np.uint8)
    arrays.update(replace)
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return arrays


@pytest.fixture
def npz_dir(tmp_path):
    write_npz(tmp_path / "pathmnist.npz")
    return str(tmp_path)


# --- the data layer ---------------------------------------------------------------------------------------------
def test_medmnist_layout_loads_with_its_own_val_split(npz_dir):
    arrays = write_npz(os.path.join(npz_dir, "pathmnist.npz"))
    s = data.load("pathmnist", npz_dir, val_fraction=0.1, input_norm="none")
    assert s.num_classes == 9 and s.in_shape == (3, 28, 28)
    assert [len(s.split(k)[1]) for k in ("train", "val", "test")] == [60, 20, 30]  # val is the file's, whole
    x, _ = s.train
    assert x.shape[1:] == (3, 28, 28) and x.dtype == torch.float32
    assert x.std(dim=(2, 3)).max() == 0  # each image one colour per channel: the channel axis is the last one
    step = ((x[:, 1, 0, 0] - x[:, 0, 0, 0]) * 255).round()
    assert set(step.tolist()) <= {1.0, -248.0}  # channel c+1 is channel c plus one (mod 250)
    xt, yt = s.test  # the test split keeps the file's order
    assert torch.equal(yt, torch.as_tensor(arrays["test_labels"][:, 0], dtype=torch.long))
    assert torch.allclose(xt[:, 0, 0, 0] * 255, torch.as_tensor(arrays["test_images"][:, 0, 0, 0]).float())
    yv = s.val[1]
    assert torch.equal(yv, torch.as_tensor(arrays["val_labels"][:, 0], dtype=torch.long))


def test_val_fraction_zero_leaves_medmnists_val_out_and_train_whole(npz_dir):
    s = data.load("pathmnist", npz_dir, val_fraction=0.0)
    assert len(s.val[1]) == 0 and len(s.train[1]) == 60
    assert s.train[0].mean(dim=(0, 2, 3)).abs().max() < 1e-4  # standardised with train's own statistics
    assert len(data.load("pathmnist", npz_dir, val_fraction=0.5).val[1]) == 20  # the fraction does not resize it


def test_classes_keep_medmnists_own_val_split_to_the_same_classes(npz_dir):
    arrays = write_npz(os.path.join(npz_dir, "pathmnist.npz"))
    s = data.load("pathmnist", npz_dir, val_fraction=0.1, input_norm="none", classes=[5, 2])
    for split in ("train", "val", "test"):
        y_file = arrays[f"{split}_labels"][:, 0]
        kept = [{5: 0, 2: 1}[int(v)] for v in y_file if v in (5, 2)]
        got = s.split(split)[1].tolist()
        if split == "train":  # train is drawn in a seeded order
            got, kept = sorted(got), sorted(kept)
        assert got == kept  # only the kept classes, relabelled in the order given


def test_missing_file_is_one_line_naming_path_and_layout(tmp_path):
    with pytest.raises(ConfigError) as e:
        data.load("pathmnist", str(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "pathmnist.npz") in msg
    assert "train_images" in msg and "MFBENCH_DATA" in msg and "PathMNIST" in msg


@pytest.mark.parametrize("drop,replace,needle", [
    (("val_labels",), {}, "missing array(s) val_labels"),
    ((), {"train_images": np.zeros((60, 28, 28, 3), np.float32)}, "train_images is float32"),
    ((), {"test_images": np.zeros((30, 28, 28), np.uint8)}, "expected uint8 of shape (N, 28, 28, 3)"),
    ((), {"val_labels": np.zeros((20, 2), np.uint8)}, "val_labels is uint8 of shape (20, 2), expected integers"),
    ((), {"train_labels": np.full((60, 1), 9, np.uint8)}, "label 9 out of range 0..8"),
    ((), {"test_labels": np.zeros((29, 1), np.uint8)}, "30 images but 29 labels"),
])
def test_malformed_file_is_one_clear_error(tmp_path, drop, replace, needle):
    write_npz(tmp_path / "pathmnist.npz", drop=drop, **replace)
    with pytest.raises(ConfigError) as e:
        data.load("pathmnist", str(tmp_path))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_not_an_npz_is_one_clear_error(tmp_path):
    (tmp_path / "pathmnist.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        data.load("pathmnist", str(tmp_path))


@pytest.mark.realdata
def test_real_pathmnist_has_medmnists_sizes():
    d = os.environ.get("MFBENCH_DATA")
    if not d or not os.path.exists(os.path.join(d, "pathmnist.npz")):
        pytest.skip("real PathMNIST absent: no pathmnist.npz under $MFBENCH_DATA (MedMNIST's file; not downloadable "
                    "here)")
    s = data.load("pathmnist", d, val_fraction=0.1)
    assert [len(s.split(k)[1]) for k in ("train", "val", "test")] == [89996, 10004, 7180]


# --- timm's MLP-Mixer as a layer stack, trained by BP and MF ---------------------------------------------------
def mixer_cfg(**kw):
    base = dict(dataset="pathmnist", arch="mixer", depth=3, width=32, patch_size=7, token_mlp_dim=16,
                channel_mlp_dim=64, batch_size=32, device="cpu", val_fraction=0.0)
    return RunConfig.from_dict({**base, **kw})


def test_mixer_stack_is_timms_blocks_with_the_declared_size():
    from timm.layers import PatchEmbed
    from timm.models.mlp_mixer import MixerBlock

    m = models.build(mixer_cfg(), (3, 28, 28))
    assert len(m) == 3 and isinstance(m.blocks[0][0], PatchEmbed)
    assert all(isinstance(b, MixerBlock) for b in [m.blocks[0][1], *m.blocks[1:]])
    assert (m.blocks[1].mlp_tokens.fc1.out_features, m.blocks[1].mlp_channels.fc1.out_features) == (16, 64)
    out = m(torch.zeros(2, 3, 28, 28))
    assert out.shape == (2, 16, 32) and m.out_shapes[0] == (16, 32)  # 4x4 patches of 7x7, hidden 32
    assert run.row_base(mixer_cfg())["arch_detail"] == "p7-h32x3-t16-c64"
    with pytest.raises(ConfigError, match="patch_size=5 does not divide the 28x28 images; allowed: 1, 2, 4, 7, 14"):
        models.build(mixer_cfg(patch_size=5), (3, 28, 28))


@pytest.mark.parametrize("algorithm", ["bp", "mf"])
def test_bp_and_mf_train_the_mixer_one_step(npz_dir, algorithm):
    cfg = mixer_cfg(algorithm=algorithm, data_dir=npz_dir)
    splits = run.load_data(cfg, "cpu")
    torch.manual_seed(0)
    rule = run.build(cfg, "cpu", splits)
    before = [p.detach().clone() for p in rule.model.parameters()]
    x, y = splits.train
    losses = rule.train_step(x[:32], y[:32], "all")
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, rule.model.parameters()))  # every block learned
    scores = rule.predict_all(x[:5])
    assert set(scores) == set(rule.pred_modes) and all(s.shape == (5, 9) for s in scores.values())
    if algorithm == "mf":  # M_i reads the token-pooled block output (hidden wide), not tokens x hidden
        assert [p[-1].in_features for p in rule.projections] == [32, 32, 32]


@pytest.mark.parametrize("update", ["per_layer", "joint"])
@pytest.mark.parametrize("k", [0, 1])
def test_mf_mixer_block_learns_from_its_own_loss_only(update, k):
    """Blocks after k (and their M) scrambled: blocks 0..k and their M come out bitwise the same, so no later
    block's loss reached them (block k's input comes from blocks < k, whose own losses train them)."""
    cfg = mixer_cfg(algorithm="mf", dataset="synthetic-pathmnist", options={"update": update})
    torch.manual_seed(0)
    rule = algorithms.build(models.build(cfg, (3, 28, 28)), 9, cfg)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 28, 28, generator=g), torch.randint(0, 9, (32,), generator=g)
    a, b = trained_beside_a_changed_copy(rule, lambda r: [*r.model.blocks[k + 1:].parameters(),
                                                          *r.projections[k + 1:].parameters()], x, y, steps=3)
    for pa, pb in zip([*a.model.blocks[:k + 1].parameters(), *a.projections[:k + 1].parameters()],
                      [*b.model.blocks[:k + 1].parameters(), *b.projections[:k + 1].parameters()]):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model.blocks[2].mlp_channels.fc1.weight, b.model.blocks[2].mlp_channels.fc1.weight)


def test_bp_mixer_first_block_does_depend_on_later_blocks():
    cfg = mixer_cfg(algorithm="bp", dataset="synthetic-pathmnist")
    torch.manual_seed(0)
    rule = algorithms.build(models.build(cfg, (3, 28, 28)), 9, cfg)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 28, 28, generator=g), torch.randint(0, 9, (32,), generator=g)
    a, b = trained_beside_a_changed_copy(rule, lambda r: r.model.blocks[1:].parameters(), x, y, steps=1)
    assert not torch.equal(a.model.blocks[0][0].proj.weight, b.model.blocks[0][0].proj.weight)


# --- the artefact's wiring ---------------------------------------------------------------------------------------
def _shell_commands(configfile, target):
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", "--cores", "1", "--configfile",
                        configfile, "--", target], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return [shlex.split(line.removeprefix("Shell command: ").split(" 2>&1")[0]) for line in r.stdout.splitlines()
            if line.startswith("Shell command: mfbench ")]


@pytest.mark.parametrize("config,name,dataset,depth", [
    ("workflow/config/smoke.yaml", "smoke", "synthetic-pathmnist", 2),
    ("workflow/config/paper.yaml", "paper", "pathmnist", 8),
])
def test_dry_run_trains_both_rules_over_paired_seeds_and_measures_the_same_net(config, name, dataset, depth):
    import yaml

    seeds = yaml.safe_load(open(os.path.join(ROOT, config)))["pathmnist_mixer"]["seeds"]
    cmds = _shell_commands(config, f"results/{name}/pathmnist_mixer/pathmnist_mixer.csv")
    by = {}
    for c in cmds:
        spec = json.loads(c[c.index("--spec") + 1]) if "--spec" in c else {}
        by.setdefault(c[1], []).append((c, spec))
    assert sorted(s["algorithm"] for _, s in by["train"]) == ["bp", "mf"]
    assert sorted(s["algorithm"] for _, s in by["memory-depth"]) == ["bp", "mf"]
    for c, s in by["train"] + by["memory-depth"]:
        assert s["arch"] == "mixer" and s["dataset"] == dataset and s["depth"] == depth
        i = c.index("--seeds") + 1
        assert [int(x) for x in c[i:i + len(seeds)]] == seeds  # the same paired seeds for training and memory
    for c, s in by["memory-depth"]:
        assert s["experiment"] == "pathmnist_mixer_memory" and c[c.index("--depths") + 1] == str(depth)
    nets = {json.dumps({k: v for k, v in s.items() if k not in ("algorithm", "experiment", "options")}, sort_keys=True)
            for _, s in by["train"] + by["memory-depth"]}
    assert len(nets) == 1  # both rules, training and memory: one net, one batch, one data setup
    (table, _), = by["mixer-table"]
    assert len([p for p in table if p.endswith(".csv") and "/memory/" not in p and "seed" in p]) == 2 * len(seeds)


# --- the claims' quantity, the table and the ledger ----------------------------------------------------------------
def _memory_rows(metric="peak_allocated_bytes", values=None, depth=2):
    values = values or {"bp": [100.0, 101.0, 99.0], "mf": [31.0, 30.5, 31.5]}
    cfg = mixer_cfg(dataset="synthetic-pathmnist", depth=depth, experiment="pathmnist_mixer_memory")
    rows = []
    for alg, vs in values.items():
        for seed, v in enumerate(vs):
            base = run.row_base(RunConfig.from_dict({**cfg.to_dict(), "algorithm": alg, "seed": seed}))
            rows += [{**base, "epoch": np.nan, "phase": "", "split": "train", "metric": metric, "value": v * 1e6,
                      "unit": "bytes", "device": "cuda", "status": "ok"},
                     {**base, "epoch": np.nan, "phase": "", "split": "train", "metric": "held_activation_peak_bytes",
                      "value": v * 5e5, "unit": "bytes", "device": "cuda", "status": "ok"}]
    return pd.DataFrame(rows)


def test_peak_train_memory_per_seed_one_measure_one_depth():
    from mfbench.claims.quantities import QUANTITIES

    q = QUANTITIES["peak_train_memory"]
    rows = _memory_rows()
    v = q(rows[rows.algorithm == "mf"], "paper")
    assert v.attrs["unit"] == "bytes" and v.to_dict() == {0: 31e6, 1: 30.5e6, 2: 31.5e6}
    oom = rows.assign(status=np.where(rows.seed == 2, "oom", "ok"))
    assert list(q(oom[oom.algorithm == "mf"], "paper").index) == [0, 1]
    cpu = _memory_rows("peak_rss_bytes").assign(device="cpu")  # a CPU run: no allocator peak, the held bytes judged
    assert q(cpu[cpu.algorithm == "mf"], "paper").to_dict() == {0: 15.5e6, 1: 15.25e6, 2: 15.75e6}
    mixed = pd.concat([rows, cpu])
    with pytest.raises(ConfigError, match="mixes devices \\(cpu, cuda\\)"):
        q(mixed[mixed.algorithm == "mf"], "paper")
    deep = pd.concat([rows, _memory_rows(depth=4)])
    with pytest.raises(ConfigError, match="must select one depth"):
        q(deep[deep.algorithm == "mf"], "paper")


def test_v2_mixer_claims_are_judged_from_the_artefacts_rows():
    from mfbench import claims
    from mfbench.claims import ledger

    mine = [c for c in claims.load() if c.id.startswith("mfv2-pathmnist-mixer")]
    assert {c.id for c in mine} == {"mfv2-pathmnist-mixer-beats-bp", "mfv2-pathmnist-mixer-memory-less",
                                    "mfv2-pathmnist-mixer-memory-31pct"}
    assert all(c.version == "2501.09238v2" for c in mine)
    st = ledger.Settings(allow_synthetic=True)
    led = ledger.judge(mine, _memory_rows(), st).set_index("id")
    assert led.loc["mfv2-pathmnist-mixer-memory-less", "verdict"] == "less"
    assert led.loc["mfv2-pathmnist-mixer-memory-31pct", "verdict"] == "consistent"
    assert led.loc["mfv2-pathmnist-mixer-memory-31pct", "measured"] == pytest.approx(0.31, rel=0.02)
    assert led.loc["mfv2-pathmnist-mixer-beats-bp", "verdict"] == "no evidence yet"  # memory rows carry no accuracy
    far = _memory_rows(values={"bp": [100.0, 101.0, 99.0], "mf": [90.0, 91.0, 89.0]})
    assert ledger.judge(mine, far, st).set_index("id").loc["mfv2-pathmnist-mixer-memory-31pct", "verdict"] \
        == "not consistent"


def _train_csv(path, alg, seed, acc):
    cfg = mixer_cfg(dataset="synthetic-pathmnist", algorithm=alg, seed=seed, experiment="pathmnist_mixer", epochs=1)
    base = run.row_base(cfg)
    modes = ["ff", "bp"] if alg == "mf" else ["bp"]
    rows = [{**base, "epoch": 1, "phase": "all", "split": "train", "metric": "loss", "value": 1.0, "unit": "nats"}]
    rows += [{**base, "pred_mode": m, "epoch": 1, "phase": "all", "split": "test", "metric": "accuracy",
              "value": acc + (0.01 if m == "ff" else 0), "unit": "fraction"} for m in modes]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_mixer_table_cli_pairs_seeds_and_puts_the_published_ratio_beside(tmp_path):
    from mfbench import cli

    runs = []
    for alg, accs in {"bp": [0.80, 0.81, 0.79], "mf": [0.82, 0.84, 0.80]}.items():
        for seed, acc in enumerate(accs):
            runs.append(str(tmp_path / f"{alg}{seed}.csv"))
            _train_csv(runs[-1], alg, seed, acc)
    mem = _memory_rows()
    mems = []
    for alg, g in mem.groupby("algorithm"):
        mems.append(str(tmp_path / f"mem_{alg}.csv"))
        g.to_csv(mems[-1], index=False)
    out, png = tmp_path / "t.csv", tmp_path / "t.png"
    assert cli.main(["mixer-table", *runs, "--memory", *mems, "--out", str(out), "--figure", str(png)]) == 0
    t = pd.read_csv(out, keep_default_na=False, na_values=[""])
    d = t[(t.quantity == "test_accuracy_diff_vs_bp") & (t.pred_mode == "ff")].iloc[0]
    assert d["mean"] == pytest.approx(0.03) and d.n == 3  # mf/ff - bp per seed: 0.03, 0.04, 0.02
    r = t[(t.quantity == "peak_memory_ratio_vs_bp") & (t.metric == "peak_allocated_bytes")].iloc[0]
    assert r["mean"] == pytest.approx(0.31, rel=0.02) and r.published == 0.31 and "2501.09238v2" in r.source
    assert "not comparable (synthetic data)" in r.note
    h = t[(t.quantity == "peak_memory_ratio_vs_bp") & (t.metric == "held_activation_peak_bytes")].iloc[0]
    assert np.isnan(h.published)  # the published ratio stands beside the judged measure only
    assert png.exists() and (tmp_path / "t.pdf").exists()


def test_mixer_table_on_cpu_runs_puts_the_published_ratio_beside_the_held_bytes(tmp_path):
    from mfbench.experiments import mixer

    runs = [str(tmp_path / f"{alg}{s}.csv") for alg in ("bp", "mf") for s in range(3)]
    for p in runs:
        _train_csv(p, os.path.basename(p)[:2], int(p[-5]), 0.8)
    cpu = _memory_rows("peak_rss_bytes").assign(device="cpu")
    mem = str(tmp_path / "mem.csv")
    cpu.to_csv(mem, index=False)
    t = mixer.table(runs, [mem], str(tmp_path / "t.csv"), str(tmp_path / "t.png"))
    r = t[t.quantity == "peak_memory_ratio_vs_bp"].set_index("metric")
    assert set(r.index) == {"peak_rss_bytes", "held_activation_peak_bytes"}
    assert r.loc["held_activation_peak_bytes", "published"] == 0.31 and np.isnan(r.loc["peak_rss_bytes", "published"])
