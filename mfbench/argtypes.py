"""Declared ranges of the commands' numeric options, as argparse `type=` callables: a value out
of range is refused at the edge, before anything is read, in one line naming the value and the
range (argparse adds the option's name: "argument --confidence: 1.5 is not in (0, 1)")."""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind=float):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def between(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = True):
    """A finite number in the interval (lo, hi), its ends open or closed as declared."""
    span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def check(text: str) -> float:
        v = _number(text)
        if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
            raise argparse.ArgumentTypeError(f"{text} is not in {span}")
        return v
    check.__name__ = f"number in {span}"
    return check


def at_least(lo: float, kind=float):
    """A finite number (or an integer, kind=int) >= lo."""
    def check(text: str):
        v = _number(text, kind)
        if v < lo:
            raise argparse.ArgumentTypeError(f"{text} is not >= {lo:g}")
        return v
    check.__name__ = f"{'integer' if kind is int else 'number'} >= {lo:g}"
    return check


def positive(text: str) -> float:
    """A finite number > 0."""
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return v


def keyed(value_type, example: str):
    """KEY=VALUE with VALUE of `value_type` (e.g. --margin fraction=0.005): (key, value)."""
    def check(text: str) -> str:  # checked, returned as given: the command parses it as before
        key, sep, v = text.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{text!r} must look like KEY=VALUE, e.g. {example}")
        try:
            value_type(v)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
        return text
    check.__name__ = "KEY=VALUE"
    return check


CONFIDENCE = between(0, 1)  # an interval level
FRACTION = between(0, 1, hi_open=False)  # an accuracy target: (0, 1]
MIN_N = at_least(2, int)  # a t-interval needs two units
RATIO_TOLERANCE = at_least(1)  # a factor: below 1 no ratio could be consistent with itself
MARGIN = keyed(positive, "fraction=0.005")
TARGET = keyed(FRACTION, "mnist=0.97")
COUNT = at_least(0, int)  # e.g. epochs left out


# The result commands' numeric options by dest: (the type the command declares, its range). The
# CLI puts the range on each such option of those commands (`apply`), so the ranges live here,
# once. (`mfbench train` checks its options in RunConfig; the measurement commands check theirs.)
RANGES = {
    "confidence": (float, CONFIDENCE), "min_n": (int, MIN_N), "ratio_tolerance": (float, RATIO_TOLERANCE),
    "margin": (None, MARGIN), "target": (None, TARGET), "skip_epochs": (int, COUNT),
    "power": (float, CONFIDENCE),  # `claims plan`: a probability
}


def apply(parser: argparse.ArgumentParser) -> None:
    """Give every declared option of `parser` its range (options of another type are left alone)."""
    for a in parser._actions:
        want = RANGES.get(a.dest)
        if want is not None and a.type is want[0] and a.choices is None:
            a.type = want[1]
