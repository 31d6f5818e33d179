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

    P = snnlab.record.params.resolve("sltt", "02_memory_and_time", profile, locals_subset)

which, for ``profile="paper"``, overlays the paper profile on the defaults, then validates every
parameter: a bad value raises ``ValueError`` naming the parameter and its allowed values before any
work starts. It also sets torch's thread count (:func:`snnlab.set_threads`).
"""

from __future__ import annotations

import ast
import copy
import json
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import yaml

from .. import checks, data, set_threads
from ..core import models
from ..paths import REPO_ROOT

__all__ = ["PAPERS_DIR", "PROFILES", "VALIDATORS", "load", "claim_spec", "list_papers", "notebook_parameters",
           "notebook_defaults", "cell_defaults", "resolve", "Params", "validate"]

PAPERS_DIR = REPO_ROOT / "papers"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PROFILES = ("quick", "paper")


def list_papers() -> list[str]:
    return sorted(p.parent.name for p in PAPERS_DIR.glob("*/paper.yaml"))


@lru_cache(maxsize=None)
def _load_cached(paper: str) -> dict:
    path = PAPERS_DIR / paper / "paper.yaml"
    if not path.exists():
        raise ValueError(f"paper={paper!r} has no {path}; known papers: {list_papers()}")
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    if doc.get("id") != paper:
        raise ValueError(f"{path} declares id={doc.get('id')!r}, expected {paper!r}")
    return doc


def load(paper: str) -> dict:
    """The parsed ``paper.yaml`` of ``paper`` (a fresh deep copy, safe to modify)."""
    return copy.deepcopy(_load_cached(paper))


def claim_spec(paper: str, claim_id: str) -> dict:
    """The ``claims.<claim_id>`` entry of ``papers/<paper>/paper.yaml``: the claim's thresholds beside
    the paper's number (``paper``) and where it comes from (``provenance``). ``ValueError`` naming the
    known claim ids when the entry is missing."""
    specs = load(paper).get("claims") or {}
    if claim_id not in specs:
        checks.fail("claim id", claim_id, f"{sorted(specs)} (papers/{paper}/paper.yaml, section claims)")
    return dict(specs[claim_id] or {})


class Params(SimpleNamespace):
    """Resolved notebook parameters: attribute access plus ``as_dict()``."""

    def as_dict(self) -> dict:
        return dict(vars(self))


# --- validators -----------------------------------------------------------------------------


def _dataset(name: str, v: Any) -> None:
    checks.choice(name, v, data.available())


def _datasets(name: str, v: Any) -> None:
    if not isinstance(v, (list, tuple)) or not v:
        checks.fail(name, v, f"a non-empty list of dataset names from {data.available()}")
    for x in v:
        checks.choice(f"{name} entry", x, data.available())


def _temporal_datasets(name: str, v: Any) -> None:
    """A list (possibly empty) of distinct temporal (event-frame) dataset names."""
    allowed = [n for n in data.available() if data.info(n).is_temporal]
    if not isinstance(v, (list, tuple)):
        checks.fail(name, v, f"a list (possibly empty) of temporal dataset names from {allowed}")
    for x in v:
        checks.choice(f"{name} entry", x, allowed)
    if len(set(v)) != len(v):
        checks.fail(name, v, f"a list of distinct names from {allowed}")


def _unit_numbers(name: str, v: Any) -> list[float]:
    if not isinstance(v, (list, tuple)) or not v:
        checks.fail(name, v, "a non-empty list of numbers in [0, 1]")
    return [checks.number_in(f"{name} entry", x, 0, 1) for x in v]


#: validators applied to any parameter of these names, in every notebook (snnlab.checks callables)
VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "profile": checks.choice_check(PROFILES),
    "seed": checks.int_at_least_check(0),
    "T": checks.int_at_least_check(1),
    "Ts": checks.int_list_check(1),
    "K": checks.int_at_least_check(1),
    "epochs": checks.int_at_least_check(1),
    "batch_size": checks.int_at_least_check(1),
    "samples": checks.int_at_least_check(2),
    "repeats": checks.int_at_least_check(1),
    "lr": checks.positive,
    "width": checks.positive,
    "weight_decay": checks.non_negative,
    "sparsity": checks.fraction,
    "sparsities": checks.fractions,
    "gamma_sals": _unit_numbers,
    "gamma_sal_sparsity": checks.fraction,
    "dataset": _dataset,
    "device": checks.choice_check(["cpu", "cuda", "auto"]),
    "INTERACTIVE": checks.boolean,
    # model and training options shared by several notebooks
    "arch": checks.choice_check(models.ARCHITECTURES),
    "norm_arch": checks.choice_check(models.ARCHITECTURES),
    "norm": checks.choice_check(models.NORMS),
    "optimizer": checks.choice_check(["adam", "sgd"]),
    "hidden": checks.int_list_check(1),
    "input_size": checks.int_at_least_check(1),
    "dropout": checks.number_in_check(0, 1, hi_open=True),
    "lam": checks.number_in_check(0, 1, why=" (sltt Eq. S13)"),
    "taus": checks.numbers_above_check(1, why=" (the leak is 1 - 1/tau)"),
    "tol": checks.positive,
    "n_seeds": checks.int_at_least_check(1),
    "n_analysis": checks.int_at_least_check(1),
    "d_ops": checks.int_at_least_check(1),
    # ssgd
    "datasets": _datasets,
    # sltt 03_accuracy: the DVS datasets its paper profile trains
    "dvs_datasets": _temporal_datasets,
    "dt": checks.positive,
    "b_th": checks.positive,
    "b_ths": checks.numbers_above_check(0),
    "rhos": checks.fractions,
    "hidden_sizes": checks.int_list_check(1),
    "reg_steps": checks.int_at_least_check(1),
    "max_train": checks.int_at_least_check(1),
    "conv_channels": checks.int_at_least_check(1),
    "deep_hidden": checks.int_list_check(1),
}


def notebook_defaults(paper: str, notebook: str) -> dict[str, Any] | None:
    """``{name: default}`` of the ``parameters`` cell of ``notebooks/<paper>/<notebook>.ipynb``
    (literal values, read with ``ast``; papermill's own parser skips lines with comments after lists);
    None when the package runs without its notebooks folder (an installed wheel). ``ValueError``
    for an unknown notebook, listing the paper's notebooks."""
    if not NOTEBOOKS_DIR.is_dir():
        return None
    folder = NOTEBOOKS_DIR / paper
    path = folder / f"{notebook}.ipynb"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.ipynb"))
        checks.fail("notebook", notebook, f"{known} (notebooks/{paper}/*.ipynb)")
    return cell_defaults(path)


def cell_defaults(path) -> dict[str, Any]:
    """``{name: literal default}`` assigned in the cell tagged ``parameters`` of the notebook at ``path``."""
    nb = json.loads(Path(path).read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            out = {}
            for node in ast.parse("".join(cell["source"])).body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, ast.AnnAssign) else []
                for t in targets:
                    if isinstance(t, ast.Name):
                        try:
                            out[t.id] = ast.literal_eval(node.value)
                        except ValueError:
                            out[t.id] = ast.unparse(node.value)
            return out
    raise ValueError(f"{path} has no cell tagged 'parameters'")


def notebook_parameters(paper: str, notebook: str) -> list[str] | None:
    """Names assigned in the notebook's ``parameters`` cell (see :func:`notebook_defaults`)."""
    d = notebook_defaults(paper, notebook)
    return None if d is None else list(d)


def validate(params: dict, choices: dict[str, Iterable[Any]] | None = None) -> None:
    """Validate ``params`` by name (see ``VALIDATORS``) and ``choices`` ({name: allowed values})."""
    for name, allowed in (choices or {}).items():
        if name in params:
            checks.choice(name, params[name], allowed)
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
    checks.choice("profile", profile, PROFILES)
    checks.choice("paper", paper, list_papers())
    declared = notebook_parameters(paper, notebook)
    if declared is not None:
        for name in params:
            if name not in declared and name != "profile":
                checks.fail("parameter name", name, f"the parameters of {paper}/{notebook}: {sorted(declared)}")
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
    set_threads()
    return Params(**merged)
