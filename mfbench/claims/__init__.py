"""The claims registry: every testable published claim, as data (registry/*.yaml).

One record per claim (see registry/README.md for the fields). `load()` validates every
record and fails with one message naming the claim and the field; the judge lives in
`mfbench.claims.ledger`, the statistics in `mfbench.claims.stats`, what each claim
measures in `mfbench.claims.quantities`.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Any

from mfbench.config import ConfigError

REGISTRY_DIR = os.path.join(os.path.dirname(__file__), "registry")
TESTS = {"paired": ("superior", "non-inferior", "equivalent"), "absolute": ("consistent",),
         "ratio": ("greater", "less", "consistent")}
FLAGS = ("confirmed", "secondary")
PROTOCOLS = ("paper", "tuned")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
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
    threshold: float | None = None
    published: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = ("paper",)
    figure: str = ""
    note: str = ""


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
    for k in ("id", "paper", "where", "statement", "flag", "artefact", "quantity", "test", "claim"):
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
    for k in ("select", "a", "b", "published"):
        if not isinstance(rec.get(k, {}), dict):
            _fail(cid, k, "must be a mapping")
    if rec["test"] in ("paired", "ratio") and not (rec.get("a") and rec.get("b")):
        _fail(cid, "a/b", f"a {rec['test']} claim needs both sides")
    pub = rec.get("published", {})
    if rec["test"] == "absolute" or rec["claim"] == "consistent":
        if not isinstance(pub.get("value"), (int, float)):
            _fail(cid, "published", "needs a numeric `value` (the published number)")
    for k in ("margin", "threshold"):
        v = rec.get(k)
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            _fail(cid, k, f"must be a positive number, got {v!r}")
    protocols = rec.get("protocols", ["paper"])
    if not isinstance(protocols, list) or not protocols or any(p not in PROTOCOLS for p in protocols):
        _fail(cid, "protocols", f"must be a non-empty list of {', '.join(PROTOCOLS)}, got {protocols!r}")
    return Claim(**{**rec, "protocols": tuple(protocols)})


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
