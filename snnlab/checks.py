"""One set of validators for the whole package (bottom layer: imports no other snnlab module).

Every check raises ``ValueError`` whose message names the parameter, the value it got and the
allowed values, e.g. ``lr='0.1' is invalid; allowed values: numbers > 0``. Each returns the value
(converted where that is safe, e.g. an integral numpy scalar to ``int``), so a function validates
and normalises its arguments in one line before any work starts:

>>> int_at_least("T", 4, 1)
4
>>> fraction("sparsity", 1.0)
Traceback (most recent call last):
...
ValueError: sparsity=1.0 is invalid; allowed values: numbers in [0, 1)

Factories (``int_at_least_check`` ...) return the same checks as ``(name, value)`` callables, the
form :data:`snnlab.record.params.VALIDATORS` holds.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "fail",
    "is_int",
    "is_real",
    "integer",
    "optional_integer",
    "int_at_least",
    "int_list",
    "positive",
    "non_negative",
    "number_in",
    "fraction",
    "fractions",
    "numbers_above",
    "choice",
    "boolean",
    "int_at_least_check",
    "int_list_check",
    "number_in_check",
    "numbers_above_check",
    "choice_check",
]

Check = Callable[[str, Any], Any]


def fail(name: str, value: Any, allowed: str) -> None:
    """Raise the package's one error form: ``name=value is invalid; allowed values: allowed``."""
    raise ValueError(f"{name}={value!r} is invalid; allowed values: {allowed}")


def is_int(x: Any) -> bool:
    """An integral number that is not a bool (``numpy.int64`` counts)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def optional_integer(name: str, value: Any, lo: int | None = None) -> int | None:
    """None, or an integer >= ``lo``."""
    return None if value is None else integer(name, value, lo=lo)


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in ``[lo, hi]`` (either bound optional)."""
    if not is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            fail(name, value, f"integers in [{lo}, {hi}]")
        if lo is not None:
            fail(name, value, f"integers >= {lo}")
        if hi is not None:
            fail(name, value, f"integers <= {hi}")
        fail(name, value, "integers")
    return int(value)


def int_at_least(name: str, value: Any, lo: int) -> int:
    return integer(name, value, lo=lo)


def int_list(name: str, value: Any, lo: int) -> list[int]:
    """A non-empty list or tuple of integers >= ``lo``."""
    if not isinstance(value, (list, tuple)) or not value:
        fail(name, value, f"a non-empty list of integers >= {lo}")
    return [int_at_least(f"{name} entry", x, lo) for x in value]


def positive(name: str, value: Any) -> float:
    if not is_real(value) or not math.isfinite(value) or not value > 0:
        fail(name, value, "finite numbers > 0")
    return float(value)


def non_negative(name: str, value: Any) -> float:
    if not is_real(value) or not math.isfinite(value) or not value >= 0:
        fail(name, value, "finite numbers >= 0")
    return float(value)


def number_in(name: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False,
              why: str = "") -> float:
    """A real number in the interval from ``lo`` to ``hi`` (open or closed at either end)."""
    ok = is_real(value) and (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
    if not ok:
        fail(name, value, f"numbers in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}{why}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """A sparsity or fraction in [0, 1)."""
    return number_in(name, value, 0, 1, hi_open=True)


def fractions(name: str, value: Any) -> list[float]:
    """A non-empty list of fractions in [0, 1)."""
    if not isinstance(value, (list, tuple)) or not value:
        fail(name, value, "a non-empty list of numbers in [0, 1)")
    return [fraction(f"{name} entry", x) for x in value]


def numbers_above(name: str, value: Any, lo: float, why: str = "") -> list[float]:
    """A non-empty list of numbers > ``lo``."""
    if not isinstance(value, (list, tuple)) or not value:
        fail(name, value, f"a non-empty list of numbers > {lo:g}")
    for x in value:
        if not is_real(x) or not x > lo:
            fail(f"{name} entry", x, f"numbers > {lo:g}{why}")
    return [float(x) for x in value]


def choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """One of ``allowed`` (compared with ``==``; a bool never matches an int option)."""
    opts = list(allowed)
    if isinstance(value, bool) and not any(isinstance(o, bool) for o in opts):
        fail(name, value, str(opts))
    try:
        ok = value in opts
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        fail(name, value, str(opts))
    return value


def boolean(name: str, value: Any) -> bool:
    """True or False (a numpy bool counts)."""
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        fail(name, value, "True or False")
    return bool(value)


# --- the same checks as (name, value) callables --------------------------------------------------


def int_at_least_check(lo: int) -> Check:
    return lambda name, v: int_at_least(name, v, lo)


def int_list_check(lo: int) -> Check:
    return lambda name, v: int_list(name, v, lo)


def number_in_check(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, why: str = "") -> Check:
    return lambda name, v: number_in(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open, why=why)


def numbers_above_check(lo: float, why: str = "") -> Check:
    return lambda name, v: numbers_above(name, v, lo, why=why)


def choice_check(allowed: Sequence[Any]) -> Check:
    opts = list(allowed)
    return lambda name, v: choice(name, v, opts)
