"""Datasets as device-resident tensors.

Each split is loaded once into one float tensor on the run's device; batches are
index slices of it, so the hot loop has no DataLoader and no per-sample Python.
Real data comes from torchvision's on-disk layout, or MedMNIST's (one `<name>.npz` of uint8
arrays, PathMNIST); `synthetic-*` datasets have the real shapes and learnable class structure,
for smoke runs and tests.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from mfbench.errors import ConfigError

INPUT_NORMS = ("standardize", "none")  # standardize: per-channel mean/std of train; none: raw pixels in [0, 1]


class DataError(ConfigError):
    """A dataset that cannot be loaded (missing offline, unreadable)."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    torchvision_class: str | None  # None: synthetic, or a MedMNIST file (medmnist)
    expected_files: tuple[str, ...] = ()  # relative to data_dir, for the "missing" error
    synthetic_sizes: tuple[int, int] = (6000, 1000)  # train, test
    medmnist: bool = False  # MedMNIST's layout: expected_files[0] is its .npz, with its own val split

    @property
    def synthetic(self) -> bool:
        return self.torchvision_class is None and not self.medmnist


_MNIST_RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_REAL = [
    DatasetSpec("mnist", (1, 28, 28), 10, "MNIST", tuple(f"MNIST/raw/{f}" for f in _MNIST_RAW)),
    DatasetSpec("fashion-mnist", (1, 28, 28), 10, "FashionMNIST", tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_RAW)),
    DatasetSpec("cifar10", (3, 32, 32), 10, "CIFAR10",
                tuple(f"cifar-10-batches-py/{f}" for f in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"])),
    DatasetSpec("cifar100", (3, 32, 32), 100, "CIFAR100", tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta"))),
    DatasetSpec("svhn", (3, 32, 32), 10, "SVHN", ("train_32x32.mat", "test_32x32.mat")),
    # MedMNIST v2 PathMNIST (colon pathology, 9 tissue classes): 89,996 / 10,004 / 7,180 images. Normalisation:
    # none declared, as for every dataset here: per-channel mean/std of the training portion at load
    # (input_norm standardize); MedMNIST's examples' 0.5/0.5 is a convention, not the data's statistics.
    DatasetSpec("pathmnist", (3, 28, 28), 9, None, ("pathmnist.npz",), medmnist=True),
]
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in _REAL}
for _s in _REAL:
    DATASETS[f"synthetic-{_s.name}"] = DatasetSpec(f"synthetic-{_s.name}", _s.shape, _s.num_classes, None)


@dataclass
class Splits:
    spec: DatasetSpec
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    classes: tuple[int, ...] = ()  # the dataset's classes kept, relabelled 0..k-1 in this order (() = all)

    @property
    def num_classes(self) -> int:
        return len(self.classes) or self.spec.num_classes

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.spec.shape

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def load(name: str, data_dir: str, device: str | torch.device = "cpu", *, val_fraction: float = 0.1,
         data_seed: int = 0, train_subset: int = 0, download: bool = False,
         input_norm: str = "standardize", classes: list[int] | tuple[int, ...] = ()) -> Splits:
    """Load a dataset into float tensors on `device`, standardised (or raw in [0, 1]: input_norm 'none').

    The validation split is carved from train with `data_seed` (fixed across run
    seeds, so every seed is selected on the same held-out data), except for MedMNIST files, which ship
    their own val split (used whole when val_fraction > 0); `train_subset`
    keeps that many training examples (0 = all) for reduced smoke/CI runs. `classes`: keep only these
    classes (every split), relabelled 0..k-1 in the order given (a transfer task); the validation
    split and the subset are then drawn from their examples.
    Standardisation statistics come from the training portion only.
    """
    spec = get_spec(name)
    if input_norm not in INPUT_NORMS:
        raise ConfigError(f"unknown input_norm {input_norm!r}; allowed: {', '.join(INPUT_NORMS)}")
    given_val = None
    if spec.synthetic:
        (xtr, ytr), (xte, yte) = _synthetic(spec, data_seed)
    elif spec.medmnist:
        (xtr, ytr), given_val, (xte, yte) = _medmnist(spec, data_dir, download)
    else:
        (xtr, ytr), (xte, yte) = _torchvision(spec, data_dir, download)
    if classes:
        bad = [c for c in classes if not 0 <= c < spec.num_classes]
        if bad:
            raise DataError(f"classes {list(classes)}: {bad[0]} is not a class of {name!r}; "
                            f"allowed: 0..{spec.num_classes - 1}")
        (xtr, ytr), (xte, yte) = _keep_classes(xtr, ytr, classes), _keep_classes(xte, yte, classes)
        if given_val is not None:
            given_val = _keep_classes(*given_val, classes)

    g = torch.Generator().manual_seed(data_seed)
    perm = torch.randperm(len(ytr), generator=g)
    n_val = int(round(val_fraction * len(ytr)))
    if given_val is not None:
        # MedMNIST ships its own val split: any val_fraction > 0 takes it whole (its size, not the fraction's),
        # so train stays MedMNIST's own and results compare with its benchmarks; 0 leaves it out, as elsewhere.
        n_val = 0
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    if not len(tr_idx):
        raise DataError(f"val_fraction {val_fraction} holds out all {len(ytr)} training examples of {name!r}, "
                        "leaving none to train on; use a smaller val_fraction")
    if train_subset > len(tr_idx):
        raise DataError(f"train_subset {train_subset} is larger than the {len(tr_idx)} training examples of {name!r}"
                        f"{f' left after holding out {n_val} for validation' if n_val else ''}; "
                        f"use at most {len(tr_idx)}, or 0 for all")
    if train_subset:
        tr_idx = tr_idx[:train_subset]
    xtr_, ytr_ = xtr[tr_idx], ytr[tr_idx]
    mean = xtr_.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr_.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    if input_norm == "none":  # raw pixels, as Hinton's FF and loeweX's re-implementation feed them
        mean, std = torch.zeros_like(mean), torch.ones_like(std)

    def put(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ((x - mean) / std).to(device).contiguous(), y.to(device)

    if given_val is not None and val_fraction > 0:
        val = put(*given_val)
    else:
        val = put(xtr[val_idx], ytr[val_idx])
    return Splits(spec, put(xtr_, ytr_), val, put(xte, yte), tuple(classes))


def _keep_classes(x: torch.Tensor, y: torch.Tensor, classes) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples of `classes`, in their original order, labelled by position in `classes`."""
    relabel = torch.full((int(max(int(y.max()), *classes)) + 1,), -1, dtype=y.dtype)
    relabel[torch.tensor(list(classes))] = torch.arange(len(classes), dtype=y.dtype)
    new = relabel[y]
    keep = new >= 0
    return x[keep], new[keep]


# MedMNIST's .npz: these arrays, images (N, H, W, C) uint8 (or (N, H, W) for one channel), labels (N, 1) int.
MEDMNIST_KEYS = tuple(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels"))


def _medmnist(spec: DatasetSpec, data_dir: str, download: bool):
    """MedMNIST's file layout read as it is (no medmnist package needed): train, val, test as float tensors."""
    import numpy as np

    path = os.path.join(data_dir, spec.expected_files[0])
    c, h, w = spec.shape
    if not os.path.exists(path):
        how = " (download: true does not fetch it: mfbench downloads torchvision datasets only)" if download else ""
        raise DataError(
            f"dataset {spec.name!r} not found: {os.path.abspath(path)} is missing{how}; expected MedMNIST's "
            f"{os.path.basename(path)} (arrays {', '.join(MEDMNIST_KEYS)}; images N x {h} x {w} x {c} uint8) under "
            "data_dir (set --data-dir, config data_dir, or env MFBENCH_DATA); the medmnist package downloads it "
            f"(medmnist.{spec.name.replace('mnist', '').capitalize()}MNIST(split='train', download=True, root=DIR))")
    _check_readable(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # not a zip / npz at all
        raise DataError(f"{path}: not a readable .npz ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        "the file is damaged: copy it again") from None
    with npz:
        missing = [k for k in MEDMNIST_KEYS if k not in npz.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; MedMNIST's layout has "
                            f"{', '.join(MEDMNIST_KEYS)} (found: {', '.join(npz.files) or 'none'})")
        out = []
        for split in ("train", "val", "test"):
            x, y = npz[f"{split}_images"], npz[f"{split}_labels"]
            if x.dtype != np.uint8 or x.shape[1:] != ((h, w, c) if c > 1 else (h, w)):
                raise DataError(f"{path}: {split}_images is {x.dtype} of shape {x.shape}, expected uint8 of shape "
                                f"(N, {h}, {w}{f', {c}' if c > 1 else ''}); the file is not {spec.name}")
            if not np.issubdtype(y.dtype, np.integer) or y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
                raise DataError(f"{path}: {split}_labels is {y.dtype} of shape {y.shape}, expected integers of "
                                "shape (N, 1) (one class per image)")
            xt = torch.from_numpy(np.ascontiguousarray(x))
            xt = xt.unsqueeze(1) if c == 1 else xt.permute(0, 3, 1, 2)
            yt = torch.from_numpy(y.reshape(-1).astype(np.int64))
            _check_images(spec, xt, split, data_dir)
            _check_labels(spec, xt, yt, split)
            out.append((xt.float().div_(255.0), yt))
    return out


def _torchvision(spec: DatasetSpec, data_dir: str, download: bool):
    import numpy as np
    import torchvision

    missing = [f for f in spec.expected_files if not os.path.exists(os.path.join(data_dir, f))]
    if missing and not download:
        raise DataError(
            f"dataset {spec.name!r} not found under data_dir {os.path.abspath(data_dir)!r} "
            f"(set --data-dir, config data_dir, or env MFBENCH_DATA); missing files: {', '.join(missing)}. "
            "Downloading is off (download: false); copy the torchvision layout there or enable download."
        )
    for f in spec.expected_files:
        _check_readable(os.path.join(data_dir, f))
    cls = getattr(torchvision.datasets, spec.torchvision_class)
    _check_files(spec, cls, data_dir)
    out = []
    for train in (True, False):
        try:
            if spec.name == "svhn":
                ds = cls(root=data_dir, split="train" if train else "test", download=download)
            else:
                ds = cls(root=data_dir, train=train, download=download)
        except Exception as e:  # corrupt files or a failed download: say which dataset, where and why
            _check_files(spec, cls, data_dir, full=True)  # name the damaged file when a checksum can
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"could not load dataset {spec.name!r} from {os.path.abspath(data_dir)!r}: {why}") from e
        x = torch.as_tensor(np.asarray(ds.data))
        y = torch.as_tensor(np.asarray(ds.labels if spec.name == "svhn" else ds.targets), dtype=torch.long)
        if x.ndim == 3:  # MNIST-like: N, H, W
            x = x.unsqueeze(1)
        elif x.shape[-1] == 3:  # CIFAR: N, H, W, C
            x = x.permute(0, 3, 1, 2)
        _check_images(spec, x, "train" if train else "test", data_dir)
        _check_labels(spec, x, y, "train" if train else "test")
        out.append((x.float().div_(255.0), y))
    return out


def _check_readable(path: str) -> None:
    """A dataset file that is a directory or cannot be opened: one line naming it and the fix."""
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory, not the dataset file torchvision reads there; "
                        "replace it with the file (the torchvision layout)")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or type(e).__name__}); "
                        "fix its permissions (e.g. chmod a+r) or copy it again") from None


def _check_images(spec: DatasetSpec, x: torch.Tensor, split: str, data_dir: str) -> None:
    """Images of another size (a consistent file of another dataset) or none at all fail here,
    naming the split, not as a shape error in the model's first layer."""
    where = f"dataset {spec.name!r} {split} split under {os.path.abspath(data_dir)!r}"
    if len(x) == 0:
        raise DataError(f"{where} is empty (0 images); its file is damaged or a placeholder: copy it again")
    if tuple(x.shape[1:]) != spec.shape:
        raise DataError(f"{where} holds images of {'x'.join(map(str, x.shape[1:]))}, expected "
                        f"{'x'.join(map(str, spec.shape))}; the files are from another dataset")


def _check_labels(spec: DatasetSpec, x: torch.Tensor, y: torch.Tensor, split: str) -> None:
    """Damaged label files fail here, before training, not as an IndexError mid-epoch."""
    if len(x) != len(y):
        raise DataError(f"dataset {spec.name!r} {split}: {len(x)} images but {len(y)} labels; "
                        "the label file is truncated or from another dataset")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= spec.num_classes):
        bad = y[(y < 0) | (y >= spec.num_classes)]
        raise DataError(f"dataset {spec.name!r} {split}: label {int(bad[0])} out of range 0..{spec.num_classes - 1} "
                        f"({len(bad)} such labels); the label file is damaged")


_IDX_MAGIC = {1: 0x801, 3: 0x803}  # unsigned-byte IDX files: labels (1 dim), images (3 dims)


def _check_idx(path: str) -> None:
    """An MNIST-layout IDX file's header and length, with a reason torchvision's bare asserts lack."""
    ndim = 1 if "labels" in os.path.basename(path) else 3
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: {size} bytes, too short for an IDX header; the file is truncated")
    magic = int.from_bytes(head[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise DataError(f"{path}: bad IDX header (magic number 0x{magic:08x}, expected 0x{_IDX_MAGIC[ndim]:08x} "
                        f"for unsigned-byte {'labels' if ndim == 1 else 'images'}); the file is damaged")
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    if dims[0] == 0:
        split = "test" if os.path.basename(path).startswith("t10k") else "train"
        raise DataError(f"{path}: holds no {'labels' if ndim == 1 else 'images'}, so the {split} split is empty; "
                        "the file is a placeholder or damaged: copy it again")
    expect = 4 + 4 * ndim + math.prod(dims)
    if size != expect:
        raise DataError(f"{path}: {size} bytes but its IDX header says {'x'.join(map(str, dims))} "
                        f"({expect} bytes); the file is truncated or damaged")


def _check_files(spec: DatasetSpec, cls, data_dir: str, *, full: bool = False) -> None:
    """Checksums torchvision knows (reused, never re-typed) and IDX headers.

    MNIST-layout: torchvision knows the md5 of the .gz archives only, checked when they are
    present; the raw files are checked structurally (header, length). CIFAR and SVHN: torchvision
    checks every file's md5 when it loads them; with `full` (after a load failed) we check them
    again here, only to name the damaged file.
    """
    from torchvision.datasets.utils import check_integrity

    files: list[tuple[str, str]] = []  # (path, md5)
    if hasattr(cls, "resources"):  # MNIST, FashionMNIST
        raw = os.path.join(data_dir, spec.torchvision_class, "raw")
        files = [(os.path.join(raw, os.path.basename(u)), md5) for u, md5 in cls.resources]
        files = [(p, m) for p, m in files if os.path.exists(p)]
        for f in spec.expected_files:
            _check_idx(os.path.join(data_dir, f))
    elif full and hasattr(cls, "train_list"):  # CIFAR10/100
        files = [(os.path.join(data_dir, cls.base_folder, f), m) for f, m in cls.train_list + cls.test_list]
    elif full and hasattr(cls, "split_list"):  # SVHN
        files = [(os.path.join(data_dir, f), m) for _, f, m in cls.split_list.values()
                 if os.path.exists(os.path.join(data_dir, f))]
    for path, md5 in files:
        if not check_integrity(path, md5):
            raise DataError(f"{path}: checksum mismatch (md5 expected {md5} by torchvision); "
                            "the file is damaged: copy or download it again")


def _synthetic(spec: DatasetSpec, data_seed: int):
    """Class prototypes (smooth random images) plus structured and white noise.

    Classes overlap enough that a linear model does not saturate, so depth and the
    learning rule still matter; everything is a pure function of `data_seed`.
    """
    g = torch.Generator().manual_seed(10_000 + data_seed)
    c, h, w = spec.shape
    k = spec.num_classes

    def smooth(n: int) -> torch.Tensor:
        coarse = torch.randn(n, c, 7, 7, generator=g)
        return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)

    protos = smooth(k)
    out = []
    for n in spec.synthetic_sizes:
        y = torch.randint(0, k, (n,), generator=g)
        scale = 1 + 0.3 * torch.randn(n, 1, 1, 1, generator=g)
        x = scale * protos[y] + 2.0 * smooth(n) + 1.5 * torch.randn(n, c, h, w, generator=g)
        out.append((torch.sigmoid(x), y))  # in [0, 1] like real pixels
    return out


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled (when a generator is given) index-slice batches; the last may be short."""
    n = len(y)
    if generator is None:
        for i in range(0, n, batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    perm = torch.randperm(n, generator=generator, device=generator.device)
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        yield x[idx], y[idx]


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Batched random crop (zero padding `pad`) and horizontal flip, on x's device."""
    n, _, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    rows = (oy + torch.arange(h, device=dev))[:, None, :, None]
    cols = (ox + torch.arange(w, device=dev))[:, None, None, :]
    chans = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    out = xp[torch.arange(n, device=dev)[:, None, None, None], chans, rows, cols]
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
