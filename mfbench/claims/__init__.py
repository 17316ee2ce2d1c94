"""The claims registry: every testable published claim, as data (registry/*.yaml).

One record per claim (see registry/README.md for the fields). `load()` validates every
record and fails with one message naming the claim and the field; the judge lives in
`mfbench.claims.ledger`, the statistics in `mfbench.claims.stats`, what each claim
measures in `mfbench.claims.quantities`.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Any

from mfbench.config import ConfigError

REGISTRY_DIR = os.path.join(os.path.dirname(__file__), "registry")
# what each quoted version is and whether it was checked against that text (one entry per version)
VERSIONS_PATH = os.path.join(os.path.dirname(__file__), "versions.yaml")
CHECKED = ("yes", "partly", "no")
TESTS = {"paired": ("superior", "non-inferior", "equivalent"), "absolute": ("reproduced",),
         "ratio": ("greater", "less", "consistent")}
# `<arXiv id or slug>v<N>`: 2501.09238v1, kesanapalli-ff-study-v1
VERSION = re.compile(r"^(\d{4}\.\d{4,5}|[a-z][a-z0-9-]*[a-z0-9]-)v\d+$")
# units a tolerance or margin may be written in, per quantity unit (converted to the quantity's unit)
UNIT_SCALE = {"fraction": {"fraction": 1.0, "percent": 0.01, "pp": 0.01}, "percent": {"percent": 1.0, "pp": 1.0}}
FLAGS = ("confirmed", "secondary")
# The analysis plan's defaults, per quantity unit (registry/README.md says why): a paired claim's margin
# and a published value's tolerance when a record declares none. A claim whose unit has neither must
# declare its own, or it fails at load (no row may end as "no margin").
DEFAULT_MARGINS = {"fraction": 0.005, "percent": 0.5}
DEFAULT_TOLERANCES = {"fraction": 0.005, "percent": 0.5}
PROTOCOLS = ("paper", "tuned")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    version: str
    family: str
    where: str
    statement: str
    flag: str
    artefact: str
    quantity: str
    test: str
    claim: str
    select: dict[str, Any] = field(default_factory=dict)
    a: dict[str, Any] = field(default_factory=dict)
    b: dict[str, Any] = field(default_factory=dict)
    margin: float | None = None
    superiority_margin: float = 0.0
    threshold: float | None = None
    tolerance: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = ("paper",)
    figure: str = ""
    note: str = ""
    provenance: str = ""  # from versions.yaml: whether the version was checked against its text, and how


def _fail(cid: str, fld: str, why: str):
    raise ConfigError(f"claims registry: claim {cid!r}, field {fld!r}: {why}")


def parse(rec: Any, source: str = "") -> Claim:
    from mfbench.claims.quantities import QUANTITIES

    if not isinstance(rec, dict):
        raise ConfigError(f"claims registry {source}: every entry must be a mapping, got {rec!r}")
    cid = str(rec.get("id", f"<entry without id in {source}>"))
    known = {f for f in Claim.__dataclass_fields__}
    for k in rec:
        if k not in known:
            _fail(cid, k, f"unknown field; allowed: {', '.join(sorted(known))}")
    for k in ("id", "paper", "version", "family", "where", "statement", "flag", "artefact", "quantity", "test",
              "claim"):
        if not isinstance(rec.get(k), str) or not rec[k].strip():
            _fail(cid, k, "required, a non-empty string")
    if rec["flag"] not in FLAGS:
        _fail(cid, "flag", f"{rec['flag']!r} not allowed; allowed: {', '.join(FLAGS)}")
    if rec["test"] not in TESTS:
        _fail(cid, "test", f"{rec['test']!r} not allowed; allowed: {', '.join(TESTS)}")
    if rec["claim"] not in TESTS[rec["test"]]:
        _fail(cid, "claim", f"{rec['claim']!r} not allowed for test {rec['test']!r}; "
                            f"allowed: {', '.join(TESTS[rec['test']])}")
    if rec["quantity"] not in QUANTITIES:
        _fail(cid, "quantity", f"{rec['quantity']!r} unknown; known: {', '.join(sorted(QUANTITIES))}")
    if not VERSION.match(rec["version"]):
        _fail(cid, "version", f"{rec['version']!r} does not parse; write <arXiv id>v<N> (2501.09238v1) or <slug>-v<N>")
    known_versions = versions()
    if rec["version"] not in known_versions:
        _fail(cid, "version", f"{rec['version']!r} has no entry in mfbench/claims/versions.yaml (what text it is, "
                              f"whether it was checked); known: {', '.join(sorted(known_versions))}")
    for k in ("select", "a", "b", "published", "tolerance", "budget"):
        if not isinstance(rec.get(k, {}), dict):
            _fail(cid, k, "must be a mapping")
    if rec["test"] in ("paired", "ratio") and not (rec.get("a") and rec.get("b")):
        _fail(cid, "a/b", f"a {rec['test']} claim needs both sides")
    pub = rec.get("published", {})
    if rec["test"] == "absolute" or rec["claim"] == "consistent":
        if not isinstance(pub.get("value"), (int, float)):
            _fail(cid, "published", "needs a numeric `value` (the published number)")
    if "printed" in pub and not (isinstance(pub["printed"], str) and _same_number(pub["printed"], pub.get("value"))):
        _fail(cid, "published", f"`printed` must be the value as printed (a string equal to {pub.get('value')!r})")
    _check_tolerance(cid, rec, QUANTITIES[rec["quantity"]].unit)
    qunit = QUANTITIES[rec["quantity"]].unit
    if rec["test"] == "paired" and rec["claim"] != "superior" and rec.get("margin") is None \
            and qunit not in DEFAULT_MARGINS:
        _fail(cid, "margin", f"required: quantity {rec['quantity']!r} is in {qunit!r}, which has no default margin")
    if rec["test"] == "absolute" and not rec.get("tolerance") and qunit not in DEFAULT_TOLERANCES:
        _fail(cid, "tolerance", f"required: quantity {rec['quantity']!r} is in {qunit!r}, which has no default")
    budget = rec.get("budget", {})
    for k, v in budget.items():
        if k not in ("epochs", "source") or (k == "epochs" and not (isinstance(v, int) and v > 0)):
            _fail(cid, "budget", f"{k}: {v!r} not allowed; allowed: epochs (a positive integer), source (text)")
    sm = rec.get("superiority_margin", 0.0)
    if not (isinstance(sm, (int, float)) and sm >= 0):
        _fail(cid, "superiority_margin", f"must be a number >= 0, got {sm!r}")
    if sm and rec["claim"] != "superior":
        _fail(cid, "superiority_margin", "only a `superior` claim has one")
    for k in ("margin", "threshold"):
        v = rec.get(k)
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            _fail(cid, k, f"must be a positive number, got {v!r}")
    protocols = rec.get("protocols", ["paper"])
    if not isinstance(protocols, list) or not protocols or any(p not in PROTOCOLS for p in protocols):
        _fail(cid, "protocols", f"must be a non-empty list of {', '.join(PROTOCOLS)}, got {protocols!r}")
    v = known_versions[rec["version"]]
    provenance = f"version checked against the text: {v['checked']}. {v['provenance']}"
    if rec.get("provenance", provenance) != provenance:  # a parsed claim's own round trip is fine
        _fail(cid, "provenance", "comes from the version's entry in mfbench/claims/versions.yaml, not per record")
    return Claim(**{**rec, "protocols": tuple(protocols), "provenance": provenance})


_VERSIONS: dict[str, dict] = {}


def versions(path: str = VERSIONS_PATH) -> dict[str, dict]:
    """Each quoted version: {text, checked (yes / partly / no), provenance}; validated once."""
    import yaml

    if path in _VERSIONS:
        return _VERSIONS[path]
    with open(path) as f:
        table = yaml.safe_load(f) or {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: must map each version to {{text, checked, provenance}}")
    for ver, e in table.items():
        if not VERSION.match(str(ver)):
            raise ConfigError(f"{path}: version {ver!r} does not parse; write <arXiv id>v<N> or <slug>-v<N>")
        if not isinstance(e, dict) or set(e) != {"text", "checked", "provenance"}:
            raise ConfigError(f"{path}: version {ver!r} needs exactly the keys text, checked, provenance")
        if e["checked"] not in CHECKED:
            raise ConfigError(f"{path}: version {ver!r}, key 'checked': {e['checked']!r} not allowed; "
                              f"allowed: {', '.join(CHECKED)}")
        if not all(isinstance(e[k], str) and e[k].strip() for k in ("text", "provenance")):
            raise ConfigError(f"{path}: version {ver!r}: text and provenance must be non-empty strings")
    _VERSIONS[path] = table
    return table


def _same_number(text: str, value: Any) -> bool:
    try:
        return float(text) == float(value)
    except (TypeError, ValueError):
        return False


def _check_tolerance(cid: str, rec: dict, qunit: str) -> None:
    """A published value's tolerance is written with its unit; it must be one the quantity converts
    from (an accuracy's in fraction, percent or pp; a ratio's a factor in x)."""
    tol = rec.get("tolerance", {})
    if not tol:
        return
    if rec["test"] == "paired":
        _fail(cid, "tolerance", "a paired claim has a `margin`, not a tolerance")
    if not (isinstance(tol.get("value"), (int, float)) and tol["value"] > 0 and isinstance(tol.get("unit"), str)):
        _fail(cid, "tolerance", "must be {value: positive number, unit: text}")
    allowed = ["x"] if rec["test"] == "ratio" else list(UNIT_SCALE.get(qunit, {qunit: 1.0}))
    if tol["unit"] not in allowed:
        _fail(cid, "tolerance", f"unit {tol['unit']!r} does not fit quantity {rec['quantity']!r}; "
                                f"allowed: {', '.join(allowed)}")
    if rec["test"] == "ratio" and tol["value"] <= 1:
        _fail(cid, "tolerance", "a ratio's tolerance is a factor above 1")


def to_unit(x: float, unit: str, qunit: str) -> float:
    """A published number or tolerance in the quantity's own unit (percent -> fraction, ...)."""
    if unit in ("", qunit, "x") and unit != "pp":
        return float(x)
    scale = UNIT_SCALE.get(qunit, {}).get(unit)
    if scale is None:
        raise ConfigError(f"cannot convert {unit!r} to {qunit!r}")
    return float(x) * scale


def load(paths: list[str] | None = None) -> list[Claim]:
    """Every claim of the registry files (default: all of registry/*.yaml), validated; ids unique."""
    import yaml

    paths = paths or sorted(glob.glob(os.path.join(REGISTRY_DIR, "*.yaml")))
    claims: list[Claim] = []
    for p in paths:
        with open(p) as f:
            recs = yaml.safe_load(f) or []
        if not isinstance(recs, list):
            raise ConfigError(f"claims registry {p}: must be a YAML list of claims")
        claims += [parse(r, os.path.basename(p)) for r in recs]
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            _fail(c.id, "id", "duplicate id")
        seen.add(c.id)
    return claims
