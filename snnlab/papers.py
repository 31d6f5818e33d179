"""Paper metadata (``papers/<id>/paper.yaml``) and notebook parameter resolution.

Each ``paper.yaml`` holds the citation, reference numbers transcribed from the paper, and the
``paper`` profile of every notebook::

    id: sltt
    title: ...
    reference: {table_s2: {...}}
    profiles:
      paper:
        default: {dataset: cifar10, epochs: 200}
        02_memory_and_time: {Ts: [2, 4, 6, 8, 16]}

A notebook's first cell (tagged ``parameters``) holds its ``quick`` defaults. The next cell calls::

    P = snnlab.papers.resolve("sltt", "02_memory_and_time", profile, locals_subset)

which, for ``profile="paper"``, overlays the paper profile on the defaults, then validates every
parameter: a bad value raises ``ValueError`` naming the parameter and its allowed values before any
work starts. It also sets torch's thread count (:func:`snnlab.set_threads`).
"""

from __future__ import annotations

import numbers
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import yaml

from .results import REPO_ROOT

__all__ = ["PAPERS_DIR", "PROFILES", "load", "list_papers", "resolve", "Params", "validate"]

PAPERS_DIR = REPO_ROOT / "papers"
PROFILES = ("quick", "paper")


def list_papers() -> list[str]:
    return sorted(p.parent.name for p in PAPERS_DIR.glob("*/paper.yaml"))


@lru_cache(maxsize=None)
def _load_cached(paper: str) -> dict:
    path = PAPERS_DIR / paper / "paper.yaml"
    if not path.exists():
        raise ValueError(f"paper={paper!r} has no {path}; known papers: {list_papers()}")
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if data.get("id") != paper:
        raise ValueError(f"{path} declares id={data.get('id')!r}, expected {paper!r}")
    return data


def load(paper: str) -> dict:
    """The parsed ``paper.yaml`` of ``paper`` (a fresh deep copy, safe to modify)."""
    import copy

    return copy.deepcopy(_load_cached(paper))


class Params(SimpleNamespace):
    """Resolved notebook parameters: attribute access plus ``as_dict()``."""

    def as_dict(self) -> dict:
        return dict(vars(self))


# --- validators -----------------------------------------------------------------------------


def _int_at_least(lo: int) -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: integers >= {lo}")

    return check


def _positive(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
        raise ValueError(f"{name}={v!r} is invalid; allowed values: numbers > 0")


def _non_negative(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
        raise ValueError(f"{name}={v!r} is invalid; allowed values: numbers >= 0")


def _fraction(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < 1:
        raise ValueError(f"{name}={v!r} is invalid; allowed values: a sparsity in [0, 1)")


def _fraction_list(name: str, v: Any) -> None:
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError(f"{name}={v!r} is invalid; allowed values: a non-empty list of sparsities in [0, 1)")
    for x in v:
        _fraction(f"{name} entry", x)


def _int_list_at_least(lo: int) -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: a non-empty list of integers >= {lo}")
        for x in v:
            _int_at_least(lo)(f"{name} entry", x)

    return check


def _choice(options: Iterable[Any]) -> Callable[[str, Any], None]:
    opts = list(options)

    def check(name: str, v: Any) -> None:
        if v not in opts:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: {opts}")

    return check


def _bool(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"{name}={v!r} is invalid; allowed values: True or False")


def _number_in(lo: float, hi: float, hi_open: bool = False, why: str = "") -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and lo <= v and (v < hi if hi_open else v <= hi)
        if not ok:
            rng = f"[{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise ValueError(f"{name}={v!r} is invalid; allowed values: {rng}{why}")

    return check


def _numbers_above(lo: float, why: str = "") -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: a non-empty list of numbers > {lo:g}")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not x > lo:
                raise ValueError(f"{name} entry={x!r} is invalid; allowed values: numbers > {lo:g}{why}")

    return check


def _choice_of(module: str, attr: str) -> Callable[[str, Any], None]:
    """A choice among ``snnlab.<module>.<attr>``, imported only when a notebook has the parameter."""

    def check(name: str, v: Any) -> None:
        import importlib

        _choice(getattr(importlib.import_module(f"snnlab.{module}"), attr))(name, v)

    return check


def _dataset(name: str, v: Any) -> None:
    from . import data

    if v not in data.available():
        raise ValueError(f"{name}={v!r} is invalid; allowed values: {data.available()}")


#: validators applied to any parameter of these names, in every notebook
VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "profile": _choice(PROFILES),
    "seed": _int_at_least(0),
    "T": _int_at_least(1),
    "Ts": _int_list_at_least(1),
    "K": _int_at_least(1),
    "epochs": _int_at_least(1),
    "batch_size": _int_at_least(1),
    "samples": _int_at_least(2),
    "repeats": _int_at_least(1),
    "lr": _positive,
    "width": _positive,
    "weight_decay": _non_negative,
    "sparsity": _fraction,
    "sparsities": _fraction_list,
    "dataset": _dataset,
    "device": _choice(["cpu", "cuda", "auto"]),
    "INTERACTIVE": _bool,
    # model and training options shared by several notebooks
    "arch": _choice_of("models", "ARCHITECTURES"),
    "norm_arch": _choice_of("models", "ARCHITECTURES"),
    "norm": _choice_of("models", "NORMS"),
    "optimizer": _choice(["adam", "sgd"]),
    "hidden": _int_list_at_least(1),
    "input_size": _int_at_least(1),
    "dropout": _number_in(0, 1, hi_open=True),
    "lam": _number_in(0, 1, why=" (sltt Eq. S13)"),
    "taus": _numbers_above(1, why=" (the leak is 1 - 1/tau)"),
    "tol": _positive,
    "n_seeds": _int_at_least(1),
    "n_analysis": _int_at_least(1),
    "d_ops": _int_at_least(1),
}


def validate(params: dict, choices: dict[str, Iterable[Any]] | None = None) -> None:
    """Validate ``params`` by name (see ``VALIDATORS``) and ``choices`` ({name: allowed values})."""
    for name, allowed in (choices or {}).items():
        if name in params:
            _choice(allowed)(name, params[name])
    for name, value in params.items():
        if name in VALIDATORS:
            VALIDATORS[name](name, value)


def resolve(
    paper: str,
    notebook: str,
    profile: str,
    params: dict,
    choices: dict[str, Iterable[Any]] | None = None,
) -> Params:
    """Merge a notebook's parameters with its paper profile and validate them.

    ``profile="quick"`` keeps ``params`` as given. ``profile="paper"`` overlays
    ``profiles.paper.default`` and ``profiles.paper.<notebook>`` from ``paper.yaml`` (only keys
    the notebook already has; unknown keys in the yaml are an error, so typos surface).
    """
    _choice(PROFILES)("profile", profile)
    merged = dict(params)
    merged["profile"] = profile
    if profile == "paper":
        prof = load(paper).get("profiles", {}).get("paper", {}) or {}
        overlay = {**(prof.get("default") or {}), **(prof.get(notebook) or {})}
        unknown = set(overlay) - set(merged)
        if unknown and notebook in prof:
            raise ValueError(
                f"papers/{paper}/paper.yaml profile 'paper' for {notebook} sets unknown parameters "
                f"{sorted(unknown)}; the notebook's parameters are {sorted(merged)}"
            )
        merged.update({k: v for k, v in overlay.items() if k in merged})
    validate(merged, choices)
    from . import set_threads

    set_threads()
    return Params(**merged)
