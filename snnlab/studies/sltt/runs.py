r"""Runs, sweeps and tables for the ``sltt`` notebooks (Meng et al., ICCV 2023, supplement).

The algorithms live in :mod:`snnlab.grad.sltt` and :mod:`.analysis`; this module holds what the three notebooks need around
them, so that the notebooks stay thin:

* **training variants** (notebooks 01 and 03): :class:`Setup` (model and optimisation shared by
  every run) and :class:`Variant` (method BPTT / SLTT / SLTT-K, T, K, soft / hard reset, BN / sWS,
  seed); :func:`train_variant` trains one with :func:`snnlab.train.fit`, checkpointed under
  :class:`snnlab.train.runs.CachedRun` keyed by everything that determines the result, so notebooks
  share trained models and a rerun only evaluates; :func:`summarize` averages runs over seeds;
* **Lemma 1 / Eq. S11** (notebook 01): :func:`eq_s11` (the paper's piecewise
  :math:`\mathrm{diag}(\epsilon^l[t])` for hard reset, written independently of
  :func:`snnlab.sltt.epsilon_diagonal`), :func:`epsilon_support` / :func:`in_support` (the set of
  values it can take), :func:`layer_epsilons`, :func:`eq_s5_residual`, :func:`temporal_summary`,
  :func:`weight_cosines`, :func:`tau_sweep`;
* **memory and time** (notebook 02, in :mod:`.memory`, re-exported here): :class:`ModelFactory`, :class:`RandomDirectInput`,
  :func:`memory_time_sweep`, :func:`linear_fit`, :func:`memory_time_summary`,
  :func:`table_s2_memory_time`, :func:`op_count_table`, :func:`op_count_measured`;
* the plots are in :mod:`.plots`.

Notation: :math:`\lambda = 1 - 1/\tau` (leak), :math:`V_{th}` threshold; tensors of one LIF layer
at one step are ``[B, ...]``; :class:`snnlab.sltt.GradientComponents` holds ``[L, T]`` norms.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ... import checks, data
from ...core import models
from ...core.encoding import AUGMENTATIONS, encode
from ...core.models import ARCHITECTURES, NORMS, SHORTCUTS, spiking_neurons
from ...core.surrogate import Rectangle
from ...grad.sltt import bptt_sltt_cosine, epsilon_diagonal, step_function
from ...paths import REPO_ROOT
from ...record.params import validate
from ...train import TETLoss, TrainConfig, evaluate, fit
from ...train.runs import CachedRun
from .analysis import gradient_components
from .common import (
    METHOD_COLORS,
    METHOD_LABELS,
    METHOD_STYLE,
    MIB,
    OFFICIAL_NORMALIZATION,
    OPTIMIZERS,
    LOSS_TARGETS,
    RESETS,
    STATE_COPIES,
    SURROGATES,
)
from .memory import (
    ModelFactory,
    RandomDirectInput,
    describe_memory_time,
    linear_fit,
    memory_time_summary,
    memory_time_sweep,
    op_count_measured,
    op_count_table,
    pick,
    table_s2_memory_time,
)


__all__ = [
    "METHOD_LABELS",
    "METHOD_COLORS",
    "METHOD_STYLE",
    "MIB",
    "RESETS",
    "STATE_COPIES",
    "pick",
    "OFFICIAL_NORMALIZATION",
    "SURROGATES",
    "validate_extra",
    "load_benchmark",
    "load_split",
    "variant_cache_dir",
    "per_timestep_curves",
    "lookup_acc",
    "Variant",
    "Setup",
    "build_model",
    "train_variant",
    "train_variants",
    "summarize",
    "dataset_frames",
    "check_dataset",
    "dvs_status",
    "dvs_setup",
    "train_dvs",
    "table_s1_dvs",
    "table_s2_accuracy",
    "table_s3",
    "analysis_batch",
    "eq_s11",
    "epsilon_support",
    "in_support",
    "layer_epsilons",
    "eq_s5_residual",
    "temporal_summary",
    "weight_cosines",
    "tau_sweep",
    "ModelFactory",
    "RandomDirectInput",
    "memory_time_sweep",
    "linear_fit",
    "memory_time_summary",
    "table_s2_memory_time",
    "describe_memory_time",
    "op_count_table",
    "op_count_measured",
]

def validate_extra(params: Mapping[str, Any]) -> None:
    """Validate what the sltt notebooks need beyond single parameters: every parameter by name
    (:func:`snnlab.papers.validate`, as :func:`~snnlab.papers.resolve` already did), then a static
    (non-temporal) ``dataset``, ``extra_Ts`` (a subset of ``Ts``) and ``K`` against ``Ts`` (K < max(Ts)).
    Raises ``ValueError``
    naming the parameter and its allowed values."""

    p = dict(params)
    validate(p)
    if "dataset" in p:

        if data.info(p["dataset"]).is_temporal:
            static = [n for n in data.available() if not data.info(n).is_temporal]
            raise ValueError(f"dataset={p['dataset']!r} is invalid here (temporal input has its own T); "
                             f"allowed values: {static}")
    if "extra_Ts" in p and "Ts" in p:
        extra = p["extra_Ts"]
        if not isinstance(extra, (list, tuple)) or any(t not in p["Ts"] for t in extra):
            raise ValueError(f"extra_Ts={extra!r} is invalid; allowed values: a list of entries of Ts={p['Ts']}")
    if "K" in p and "Ts" in p and isinstance(p["Ts"], (list, tuple)) and p["Ts"]:
        if checks.int_at_least("K", p["K"], 1) >= max(p["Ts"]):
            raise ValueError(f"K={p['K']!r} is invalid for Ts={p['Ts']}; allowed values: 1..{max(p['Ts']) - 1} "
                             "(SLTT-K with K >= T is plain SLTT)")


def load_split(name: str, split: str = "train"):
    """:func:`snnlab.data.load` with per-channel standardisation where the dataset offers it (the
    paper normalises to zero mean and unit variance): CIFAR-10/100 with the official code's
    statistics (:data:`OFFICIAL_NORMALIZATION`), SVHN and Fashion-MNIST with the standard ones
    (``normalize=True``). The training augmentation is applied per batch by :func:`train_variant`
    (``Setup.augment``), not here."""

    opts = data.info(name).options
    if name in OFFICIAL_NORMALIZATION:
        return data.load(name, split, normalize=OFFICIAL_NORMALIZATION[name])
    return data.load(name, split, **({"normalize": True} if "normalize" in opts else {}))


def load_benchmark(name: str = "sltt_memory_time_cpu") -> dict[str, Any] | None:
    """The committed benchmark result ``benchmarks/results/<name>.json`` (None if absent)."""
    path = REPO_ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


# --- training variants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One training run's method and neuron/normalisation choice.

    ``method``: ``"bptt"`` (:func:`snnlab.train.bptt_step`, fused multi-step; BN over T*B: the
    stronger baseline), ``"bptt_paper"`` (:func:`snnlab.grad.sltt.bptt_paper_step`: the paper's
    BPTT as the official ``train_BPTT.py`` runs it, per-step loop and per-step BN), ``"sltt"`` or
    ``"sltt_k"`` (:func:`snnlab.sltt.make_sltt_step`; per-step BN). ``K``: the
    back-propagated steps of SLTT-K (1..T; None otherwise). ``reset``: ``"soft"`` (Eq. S1) or
    ``"hard"`` (Eq. S10, reset to 0). ``norm``: ``"bn"``, ``"sws"`` or ``"none"``.
    """

    method: str = "sltt"
    T: int = 6
    K: int | None = None
    reset: str = "soft"
    norm: str = "bn"
    seed: int = 0

    def __post_init__(self) -> None:

        checks.choice("method", self.method, list(METHOD_LABELS))
        T = checks.int_at_least("T", self.T, 1)
        if self.method == "sltt_k":
            if self.K is None:
                raise ValueError("K=None is invalid for method='sltt_k'; allowed values: integers 1..T")
            if checks.int_at_least("K", self.K, 1) > T:
                raise ValueError(f"K={self.K!r} is invalid for T={T}; allowed values: integers 1..{T}")
        elif self.K is not None:
            raise ValueError(f"K={self.K!r} is only for method='sltt_k'; use K=None with method={self.method!r}")
        checks.choice("reset", self.reset, RESETS)
        checks.choice("norm", self.norm, NORMS)
        checks.int_at_least("seed", self.seed, 0)

    @property
    def label(self) -> str:
        m = METHOD_LABELS[self.method] + (f" (K={self.K})" if self.K else "")
        return f"{m}, T={self.T}, {self.reset} reset, {self.norm}"


@dataclass(frozen=True)
class Setup:
    """Model and optimisation shared by the variants of one notebook (Table S4 in the paper profile).

    ``arch``/``width``/``hidden``/``dropout``: :func:`snnlab.models.build` (``hidden`` only for the
    MLP, ``dropout`` only for VGG). ``tau``: LIF time constant (sltt preset: 1.1, the official
    code's ``-tau`` default; the supplement does not print it). ``lam``: the TET loss weight of
    Eq. S13 (:class:`snnlab.train.TETLoss`). Cosine learning-rate schedule.

    The official code's training options (github.com/qymeng94/SLTT, ``train_SLTT.py``; the paper
    profile sets all four): ``surrogate`` (:data:`SURROGATES`: ``"rectangle"`` = Eq. 5, the default
    here; ``"triangle"`` = the official default), ``shortcut_from`` (``preact_resnet18`` only,
    ignored by other networks: ``"input"`` or ``"spikes"``, the official
    ``models/spiking_resnet.py`` wiring), ``augment`` (``"none"`` or ``"crop_flip_cutout"``:
    :func:`snnlab.core.encoding.augment_batch`, the official CIFAR transforms) and ``amp``
    (autocast + GradScaler on CUDA, a no-op on CPU). At their defaults they leave the cache key
    as it was before they existed (:meth:`key`).
    """

    arch: str = "mlp"
    width: float = 1.0
    hidden: tuple[int, ...] = (128, 128)
    tau: float = 1.1
    dropout: float = 0.0
    epochs: int = 8
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    batch_size: int = 64
    lam: float = 0.05
    device: str = "cpu"
    surrogate: str = "rectangle"
    shortcut_from: str = "input"
    augment: str = "none"
    amp: bool = False
    loss_target: str = "vth"

    def __post_init__(self) -> None:

        checks.choice("arch", self.arch, ARCHITECTURES)
        checks.positive("width", self.width)
        if not isinstance(self.hidden, (list, tuple)) or not self.hidden:
            raise ValueError(f"hidden={self.hidden!r} is invalid; allowed values: a non-empty list of integers >= 1")
        object.__setattr__(self, "hidden", tuple(checks.int_at_least("hidden entry", h, 1) for h in self.hidden))
        if isinstance(self.tau, bool) or not isinstance(self.tau, numbers.Real) or not self.tau > 1:
            raise ValueError(f"tau={self.tau!r} is invalid; allowed values: numbers > 1 (leak 1 - 1/tau)")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout!r} is invalid; allowed values: [0, 1)")
        checks.int_at_least("epochs", self.epochs, 1)
        checks.positive("lr", self.lr)
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, numbers.Real) \
                or self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} is invalid; allowed values: numbers >= 0")
        checks.int_at_least("batch_size", self.batch_size, 1)
        if isinstance(self.lam, bool) or not isinstance(self.lam, numbers.Real) or not 0 <= self.lam <= 1:
            raise ValueError(f"lam={self.lam!r} is invalid; allowed values: [0, 1]")
        checks.choice("device", self.device, ["cpu", "cuda", "auto"])
        checks.choice("surrogate", self.surrogate, SURROGATES)
        checks.choice("shortcut_from", self.shortcut_from, SHORTCUTS)
        checks.choice("augment", self.augment, AUGMENTATIONS)
        checks.boolean("amp", self.amp)
        checks.choice("loss_target", self.loss_target, LOSS_TARGETS)

    def key(self) -> dict[str, Any]:
        """The setup as a cache key: ``asdict`` without the official-code options at their defaults
        (so runs cached before the options existed keep their key)."""
        d = asdict(self)
        for k, default in (("surrogate", "rectangle"), ("shortcut_from", "input"), ("augment", "none"),
                           ("amp", False), ("loss_target", "vth")):
            if d[k] == default:
                d.pop(k)
        return d

    def loss_fn(self):
        """The per-step training loss: Eq. S13 ``TETLoss(lam, v_th=1)``, or Eq. S14 (DVS-CIFAR10) with
        ``loss_target="onehot"``."""
        return TETLoss(lam=self.lam, v_th=1.0, target=self.loss_target)


def dataset_frames(ds) -> int | None:
    """The number of frames (its own T) of a temporal dataset (``input_shape[0]``); None for a static one."""
    return int(ds.input_shape[0]) if getattr(ds, "is_temporal", False) else None


def check_dataset(variant: Variant, setup: Setup, ds) -> None:
    """Check that ``ds`` can train ``variant``: a temporal dataset (event frames ``[T, C, H, W]``)
    fixes T to its number of frames and takes no image augmentation. Raises ``ValueError`` naming
    the parameter."""
    frames = dataset_frames(ds)
    if frames is None:
        return
    name = getattr(ds, "name", "this dataset")
    if variant.T != frames:
        raise ValueError(f"T={variant.T!r} is invalid for the temporal dataset {name!r} (its samples have "
                         f"{frames} frames, its own T); allowed values: [{frames}] (or load it with frames=T)")
    if setup.augment != "none":
        raise ValueError(f"augment={setup.augment!r} is invalid for the temporal dataset {name!r}; "
                         "allowed values: ['none'] (the augmentation is for static images)")


def _ds_shape(ds) -> tuple[int, int, int]:
    """``(in_channels, input_size, in_features)`` of a static image or vector dataset, or of one
    frame of a temporal one."""
    shape = tuple(ds.input_shape)[1:] if getattr(ds, "is_temporal", False) else tuple(ds.input_shape)
    in_features = int(np.prod(shape))
    if len(shape) == 3:
        return shape[0], shape[-1], in_features
    return 1, 1, in_features


def build_model(variant: Variant, setup: Setup, ds) -> nn.Module:
    """The variant's spiking net (sltt LIF preset, multi-step), initialised after
    ``torch.manual_seed(variant.seed)``: the exact starting point of :func:`train_variant`."""

    c, hw, nf = _ds_shape(ds)
    kw: dict[str, Any] = {"tau": setup.tau, "surrogate": setup.surrogate}
    if variant.reset == "hard":
        kw["v_reset"] = 0.0
    if setup.arch == "preact_resnet18":
        kw["shortcut_from"] = setup.shortcut_from
    torch.manual_seed(variant.seed)
    return models.build(setup.arch, ds.num_classes, in_channels=c, input_size=hw, in_features=nf,
                        width=setup.width, neuron="sltt", norm=variant.norm, dropout=setup.dropout,
                        hidden=setup.hidden, **kw)


def _train_config(variant: Variant, setup: Setup, checkpoint_dir: str | None, progress: bool,
                  dataset: str | None = None):
    """The :class:`snnlab.train.TrainConfig` of a run; the augmentation's fills are written in the
    units of :func:`load_split` (the official statistics for CIFAR-10/100)."""

    aug_kw: dict[str, Any] = {}
    if setup.augment != "none" and dataset in OFFICIAL_NORMALIZATION:
        mean, std = OFFICIAL_NORMALIZATION[dataset]
        aug_kw = {"mean": list(mean), "std": list(std)}
    return TrainConfig(epochs=setup.epochs, lr=setup.lr, optimizer=setup.optimizer,
                       weight_decay=setup.weight_decay, schedule="cosine", batch_size=setup.batch_size,
                       T=variant.T, loss="tet", seed=variant.seed,
                       loss_kw={"lam": setup.lam, **({} if setup.loss_target == "vth" else {"target": setup.loss_target})},
                       device=setup.device, checkpoint_dir=checkpoint_dir, progress=progress,
                       augment=setup.augment, augment_kw=aug_kw, amp=setup.amp)


def variant_cache_dir(variant: Variant, setup: Setup, ds):
    """Checkpoint directory of a run: a :class:`snnlab.train.runs.CachedRun` keyed by the setup, the
    variant, the training data's content and the code version."""

    return CachedRun("sltt-variant", {"setup": setup.key(), "variant": asdict(variant)}, [ds]).dir


def train_variant(variant: Variant, setup: Setup, train_ds, test_ds, cache: bool = True,
                  progress: bool = False) -> dict[str, Any]:
    """Train one variant (or load it from the cache) and evaluate it on ``test_ds``.

    Returns ``{"variant", "acc", "acc_per_t", "firing_rate", "history", "model"}`` (accuracies in
    [0, 1]; ``acc_per_t`` of the output accumulated over the first t steps). The model is left in
    eval mode, multi-step.
    """

    if not isinstance(variant, Variant) or not isinstance(setup, Setup):
        raise ValueError("train_variant needs a Variant and a Setup (snnlab.sltt_plots)")
    check_dataset(variant, setup, train_ds)
    check_dataset(variant, setup, test_ds)
    net = build_model(variant, setup, train_ds)
    ckpt = str(variant_cache_dir(variant, setup, train_ds)) if cache else None
    cfg = _train_config(variant, setup, ckpt, progress, getattr(train_ds, "name", None))
    step = None if variant.method == "bptt" else step_function(variant.method, variant.K, seed=variant.seed)
    history = fit(net, train_ds, test_ds, cfg, step_fn=step)
    ev = evaluate(net, test_ds, variant.T, device=cfg.resolved_device(), seed=variant.seed)
    return {"variant": variant, "acc": ev["acc"], "acc_per_t": ev["acc_per_t"],
            "firing_rate": ev["firing_rate"], "history": history, "model": net}


def train_variants(variants: Sequence[Variant], setup: Setup, train_ds, test_ds, cache: bool = True,
                   progress: bool = True) -> list[dict[str, Any]]:
    """:func:`train_variant` for each variant, with one tqdm bar over the runs."""
    return [train_variant(v, setup, train_ds, test_ds, cache=cache)
            for v in tqdm(list(variants), desc="runs", disable=not progress)]


def summarize(runs: Sequence[Mapping[str, Any]]):
    """Mean and sample standard deviation of the final accuracy over seeds, in percent.

    Returns a DataFrame with one row per (method, T, K, reset, norm): ``acc_mean``, ``acc_std``
    (0 for a single seed), ``n`` and ``accs`` (the per-seed accuracies, %).
    """

    rows = []
    for r in runs:
        v = r["variant"]
        rows.append({"method": v.method, "T": v.T, "K": v.K if v.K is not None else 0, "reset": v.reset,
                     "norm": v.norm, "seed": v.seed, "acc": 100.0 * float(r["acc"])})
    if not rows:
        raise ValueError("runs is empty; give at least one train_variant result")
    df = pd.DataFrame(rows)
    g = df.groupby(["method", "T", "K", "reset", "norm"], sort=False)["acc"]
    out = g.agg(acc_mean="mean", n="count").reset_index()
    out["acc_std"] = g.std(ddof=1).fillna(0.0).values
    out["accs"] = g.agg(list).values
    return out[["method", "T", "K", "reset", "norm", "acc_mean", "acc_std", "n", "accs"]]


# --- DVS columns of Tables S1 / S3 (paper profile) ------------------------------------------------


def dvs_status(names: Sequence[str], root=None):
    """Whether each DVS dataset in ``names`` is under the data root, without reading it: a DataFrame
    indexed by dataset with ``present`` (both splits found) and ``missing`` (what is missing, the
    files the reader needs and where they come from; empty when present)."""
    rows = []
    for name in names:
        info = data.info(name)
        if not info.is_temporal:
            raise ValueError(f"dvs_datasets entry {name!r} is invalid; allowed values: "
                             f"{[n for n in data.available() if data.info(n).is_temporal]}")
        miss = {s: m for s, m in data.present(name, root).items() if m}
        files = sorted({f for fs in info.files.values() for f in fs})
        rows.append({"dataset": name, "present": not miss,
                     "missing": "" if not miss else "; ".join(
                         f"{'/'.join(s for s in miss if miss[s] == m)}: {m}" for m in dict.fromkeys(miss.values()))
                     + f" (needs {', '.join(files)} under {data.data_root(root)}; source: {info.source})"})
    return pd.DataFrame(rows, columns=["dataset", "present", "missing"]).set_index("dataset")


def dvs_setup(name: str, settings: Mapping[str, Mapping[str, Any]], surrogate: str = "rectangle",
              amp: bool = False, device: str = "cpu", **override) -> tuple[Setup, int, dict[str, Any]]:
    """The official code's setting of one DVS dataset (``settings``: ``reference.dvs_settings`` of
    ``papers/sltt/paper.yaml``): ``(setup, T, load_options)``. ``T`` is the number of frames the
    reader integrates (the dataset's own T); ``load_options`` go to :func:`snnlab.data.load`.
    ``override``: Setup fields to replace (tests use tiny networks and one epoch)."""
    if name not in settings:
        raise ValueError(f"dataset={name!r} is invalid; allowed values: {sorted(settings)}")
    s = settings[name]
    setup = Setup(arch=s["arch"], dropout=s["dropout"], epochs=s["epochs"], lr=s["lr"], optimizer=s["optimizer"],
                  weight_decay=s["weight_decay"], batch_size=s["batch_size"], lam=s["lam"], device=device,
                  surrogate=surrogate, amp=amp, loss_target=s["loss_target"])
    setup = replace(setup, **override)
    T = checks.int_at_least("T", s["T"], 1)
    return setup, T, {"frames": T, "size": int(s["size"]), "split_by": s["split_by"]}


def train_dvs(name: str, settings: Mapping[str, Mapping[str, Any]], seeds: Sequence[int], surrogate: str = "rectangle",
              amp: bool = False, device: str = "cpu", root=None, progress: bool = True, **override) -> list[dict[str, Any]]:
    """SLTT (per-step BN) on one DVS dataset with its official setting (:func:`dvs_setup`), for every
    seed and every reset in ``settings[name]["resets"]`` (DVS-CIFAR10: soft and hard, Table S1; DVS-Gesture:
    soft): the :func:`train_variant` results. Reads the data from the data root (raises if absent;
    check with :func:`dvs_status` first)."""
    setup, T, opts = dvs_setup(name, settings, surrogate, amp, device, **override)
    train_ds = data.load(name, "train", root=root, **opts)
    test_ds = data.load(name, "test", root=root, **opts)
    resets = list(settings[name].get("resets", ["soft"]))
    variants = [Variant("sltt", T, reset=r, seed=s) for s in seeds for r in resets]
    return train_variants(variants, setup, train_ds, test_ds, progress=progress)


def table_s1_dvs(dvs_summary, paper_s1: Mapping[str, Mapping[str, float]], T: int, key: str = "dvs_cifar10"):
    """Table S1's DVS-CIFAR10 column: soft and hard reset, paper (``paper_s1[key]``) and ours (SLTT at
    ``T``, from :func:`summarize` of :func:`train_dvs`; None when not run: ours NaN)."""
    rows = []
    for r in RESETS:
        mean = lookup_acc(dvs_summary, "sltt", T, reset=r) if dvs_summary is not None else float("nan")
        std = lookup_acc(dvs_summary, "sltt", T, reset=r, col="acc_std") if dvs_summary is not None else float("nan")
        rows.append({"reset": r, "paper %": paper_s1[key][r], "ours mean %": mean, "ours std": std})
    return pd.DataFrame(rows).set_index("reset")


def per_timestep_curves(runs: Sequence[Mapping[str, Any]], T: int, seed: int | None = None,
                        reset: str = "soft", norm: str = "bn") -> dict[str, list[float]]:
    """``{label: acc_per_t}`` of the runs at ``T`` (one seed: ``seed``, default the smallest), for
    :func:`snnlab.plotting.accuracy_per_timestep`."""
    sel = [r for r in runs if r["variant"].T == T and r["variant"].reset == reset and r["variant"].norm == norm]
    if not sel:
        raise ValueError(f"T={T!r} is invalid; allowed values: {sorted({r['variant'].T for r in runs})}")
    seed = min(r["variant"].seed for r in sel) if seed is None else seed
    out = {}
    for r in sel:
        v = r["variant"]
        if v.seed == seed:
            out[METHOD_LABELS[v.method] + (f" (K={v.K})" if v.K else "")] = list(r["acc_per_t"])
    return out


def lookup_acc(summary, method: str, T: int, reset: str = "soft", norm: str = "bn", col: str = "acc_mean") -> float:
    """One entry (``acc_mean`` or ``acc_std``, %) of a :func:`summarize` frame; NaN if absent."""
    m = summary[(summary.method == method) & (summary["T"] == T) & (summary.reset == reset) & (summary.norm == norm)]
    return float(m[col].iloc[0]) if len(m) else float("nan")


def table_s2_accuracy(summary, paper: Mapping[str, Any] | None = None, Ts: Sequence[int] | None = None):
    """Table S2 analogue: accuracy (%) per T of BPTT, SLTT, SLTT-K (ours, soft reset, BN) beside the
    paper's ``table_s2_cifar10`` (``{"T": [...], "bptt": {"acc": [...]}, "sltt": {"acc": [...]}}``).

    Columns: ``ours BPTT`` (fused), ``ours BPTT (paper)`` (the official per-step loop), ``ours SLTT``,
    ``ours SLTT-K``, ``ours SLTT - BPTT``, ``ours SLTT - BPTT (paper)`` (and the ``±`` std columns), then ``paper BPTT``, ``paper SLTT``, ``paper SLTT - BPTT``. NaN where absent.
    """

    Ts = sorted(set(summary["T"])) if Ts is None else list(Ts)
    p_T = list(paper["T"]) if paper else []
    rows = []
    for T in Ts:
        b, bp, s, k = (lookup_acc(summary, m, T) for m in ("bptt", "bptt_paper", "sltt", "sltt_k"))
        row = {"T": T, "ours BPTT": b, "± BPTT": lookup_acc(summary, "bptt", T, col="acc_std"),
               "ours BPTT (paper)": bp, "± BPTT (paper)": lookup_acc(summary, "bptt_paper", T, col="acc_std"),
               "ours SLTT": s, "± SLTT": lookup_acc(summary, "sltt", T, col="acc_std"),
               "ours SLTT-K": k, "ours SLTT - BPTT": s - b, "ours SLTT - BPTT (paper)": s - bp}
        if T in p_T:
            i = p_T.index(T)
            pb, ps = paper["bptt"]["acc"][i], paper["sltt"]["acc"][i]
            row.update({"paper BPTT": pb, "paper SLTT": ps, "paper SLTT - BPTT": ps - pb})
        else:
            row.update({"paper BPTT": float("nan"), "paper SLTT": float("nan"), "paper SLTT - BPTT": float("nan")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("T")


def table_s3(summary, paper_s3: Mapping[str, Mapping[str, Any]], dataset: str, arch: str,
             dvs: Mapping[str, Any] | None = None):
    """The SLTT rows of Table S3 (``reference.table_s3_sltt``), one per key: the paper's ``dataset``,
    ``network``, ``method``, ``T``, ``acc`` / ``std`` / ``best`` (%), then ours where this notebook
    regenerates the row (``run``): mean, std and best over seeds of SLTT (soft reset, BN) at the
    row's T from ``summary`` (:func:`summarize`), and ``status``, which says whether this run used the
    paper's dataset and network (``dataset`` / ``arch`` against the row's) or is the quick analogue.
    Rows no notebook runs carry ``status = "not run: <why>"`` and NaN for ours. DVS rows (``dvs: true``)
    are filled only from ``dvs`` (``{dataset: summarize(train_dvs(...))}``, the paper profile's DVS
    runs), never from the static quick run; without a run they say so and keep NaN."""

    rows = []
    for key, r in paper_s3.items():
        row = {"row": key, "dataset": r["dataset"], "network": r["network"], "method": r.get("method", "SLTT"),
               "T": int(r["T"]), "paper mean": r["acc"], "paper std": r.get("std", float("nan")),
               "paper best": r.get("best", float("nan")), "ours mean": float("nan"), "ours std": float("nan"),
               "ours best": float("nan")}
        if "run" not in r:
            row["status"] = "not run: " + str(r.get("not_run", "no notebook runs this row"))
            rows.append(row)
            continue
        if r.get("dvs"):
            _dvs_row(row, r, (dvs or {}).get(r["dataset"]))
            rows.append(row)
            continue
        m = summary[(summary.method == "sltt") & (summary["T"] == row["T"]) & (summary.reset == "soft")
                    & (summary.norm == "bn")]
        same = dataset == r["dataset"] and arch == r.get("arch")
        if not len(m):
            row["status"] = f"not run here: T={row['T']} is not among this run's T"
        else:
            accs = list(m.accs.iloc[0])
            row.update({"ours mean": float(m.acc_mean.iloc[0]), "ours std": float(m.acc_std.iloc[0]),
                        "ours best": max(accs)})
            row["status"] = (f"{r['run']}: this row ({dataset}, {arch}, {len(accs)} seeds)" if same else
                             f"{r['run']} quick analogue: {arch} on {dataset}, {len(accs)} seeds (not the paper's "
                             "dataset or network; the paper profile runs the row)")
        rows.append(row)
    return pd.DataFrame(rows).set_index("row")


def _dvs_row(row: dict, r: Mapping[str, Any], summ) -> None:
    """Fill one DVS row of :func:`table_s3` from the paper profile's DVS runs (``summ``; None: not run)."""
    if summ is None:
        row["status"] = (f"paper profile only: {r['run']} trains it when dvs_datasets includes {r['dataset']!r} and "
                         "its files are under the data root; not run here (no DVS number is reproduced)")
        return
    m = summ[(summ.method == "sltt") & (summ["T"] == row["T"]) & (summ.reset == "soft") & (summ.norm == "bn")]
    if not len(m):
        row["status"] = f"not run here: no SLTT soft-reset run at T={row['T']} on {r['dataset']}"
        return
    accs = list(m.accs.iloc[0])
    row.update({"ours mean": float(m.acc_mean.iloc[0]), "ours std": float(m.acc_std.iloc[0]), "ours best": max(accs)})
    row["status"] = f"{r['run']} (paper profile): {r['dataset']}, {r.get('arch')}, {len(accs)} seeds"


# --- Lemma 1, epsilon and Eq. S11 -----------------------------------------------------------------


def analysis_batch(ds, n: int, T: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``ds`` drawn without replacement (seeded), direct-encoded:
    ``(x_seq [T, n, ...], y [n])``."""

    n = checks.int_at_least("n", n, 1)
    T = checks.int_at_least("T", T, 1)
    if n > len(ds):
        raise ValueError(f"n={n} is invalid; allowed values: 1..{len(ds)} (the dataset's size)")
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    x = torch.stack([ds[int(i)][0] for i in idx])
    y = torch.as_tensor([int(ds[int(i)][1]) for i in idx])
    return encode(x, T, "direct"), y


def eq_s11(u: torch.Tensor, s: torch.Tensor, tau: float, v_th: float = 1.0) -> torch.Tensor:
    r"""The paper's Eq. S11: :math:`\mathrm{diag}(\epsilon^l[t])` for hard reset (Eq. S10, reset to
    0) with the rectangle surrogate of width :math:`\gamma = V_{th}`, elementwise:

    .. math::

        \epsilon_{jj} = \begin{cases}\lambda\,(1 - s_j - u_j / V_{th}), & \tfrac12 V_{th} < u_j <
        \tfrac32 V_{th},\\ \lambda\,(1 - s_j), & \text{otherwise,}\end{cases}\qquad \lambda = 1 - 1/\tau.

    Written from the formula alone (no autograd), as a reference for
    :func:`snnlab.sltt.epsilon_diagonal` (``reset="hard"``). ``u``, ``s``: same shape.
    """
    if u.shape != s.shape:
        raise ValueError(f"u and s must have the same shape, got {tuple(u.shape)} and {tuple(s.shape)}")
    if not (isinstance(tau, numbers.Real) and tau >= 1):
        raise ValueError(f"tau={tau!r} is invalid; allowed values: numbers >= 1")
    checks.positive("v_th", v_th)
    lam = 1.0 - 1.0 / tau
    inside = (u > 0.5 * v_th) & (u < 1.5 * v_th)
    return torch.where(inside, lam * (1.0 - s - u / v_th), lam * (1.0 - s))


def epsilon_support(tau: float, v_th: float = 1.0, reset: str = "soft") -> dict[str, list]:
    r"""The values :math:`\mathrm{diag}(\epsilon^l[t])` can take with the rectangle surrogate
    (:math:`\gamma = V_{th}`) and :math:`s = H(u - V_{th})`, :math:`\lambda = 1 - 1/\tau`.

    * soft reset, :math:`\epsilon = \lambda(1 - V_{th}\,g')`: the points :math:`\{0, \lambda\}`
      (:math:`g' = 1/V_{th}` inside the window, 0 outside);
    * hard reset (Eq. S11): points :math:`\{\lambda\}` (:math:`u \le V_{th}/2`) and :math:`\{0\}`
      (:math:`u \ge 3V_{th}/2`), the interval :math:`(0, \lambda/2)` (:math:`V_{th}/2 < u < V_{th}`,
      no spike) and :math:`(-\tfrac32\lambda, -\lambda]` (:math:`V_{th} \le u < \tfrac32 V_{th}`,
      spike).

    Returns ``{"points": [...], "intervals": [(lo, hi), ...], "lam": lambda}`` (interval ends
    included, for plotting and for :func:`in_support`). ``v_th`` does not change the values (only
    where in u they occur); it is validated for symmetry with :func:`eq_s11`.
    """
    checks.choice("reset", reset, RESETS)
    if not (isinstance(tau, numbers.Real) and tau >= 1):
        raise ValueError(f"tau={tau!r} is invalid; allowed values: numbers >= 1")
    checks.positive("v_th", v_th)
    lam = 1.0 - 1.0 / tau
    if reset == "soft":
        return {"points": [0.0, lam], "intervals": [], "lam": lam}
    return {"points": [0.0, lam], "intervals": [(-1.5 * lam, -lam), (0.0, 0.5 * lam)], "lam": lam}


def in_support(values: torch.Tensor, support: Mapping[str, Any], atol: float = 1e-6) -> torch.Tensor:
    """Boolean mask: which ``values`` lie in ``support`` (from :func:`epsilon_support`), within ``atol``."""
    v = torch.as_tensor(values, dtype=torch.float64)
    ok = torch.zeros_like(v, dtype=torch.bool)
    for p in support["points"]:
        ok |= (v - p).abs() <= atol
    for lo, hi in support["intervals"]:
        ok |= (v >= lo - atol) & (v <= hi + atol)
    return ok


def _node_reset(m) -> str:
    return "soft" if m.v_reset is None else "hard"


def layer_epsilons(model: nn.Module, gc, formula: str = "library") -> list[torch.Tensor]:
    r"""Per LIF layer, :math:`\mathrm{diag}(\epsilon^l[t])` for every t < T and every neuron, flattened
    in (t, batch, neuron) order.

    ``formula="library"``: :func:`snnlab.sltt.epsilon_diagonal` with the node's own tau, threshold,
    reset and surrogate. ``"eq_s11"``: the paper's closed form :func:`eq_s11` (valid for hard reset
    to 0 with the rectangle surrogate of width :math:`V_{th}`; raises otherwise).
    ``gc``: :func:`snnlab.sltt.gradient_components` of ``model`` with ``keep_tensors=True``.
    """

    if gc.tensors is None:
        raise ValueError("gc has no tensors; call sltt.gradient_components(..., keep_tensors=True)")
    nodes = spiking_neurons(model)
    if len(nodes) != len(gc.layer_names):
        raise ValueError(f"model has {len(nodes)} LIF layers but gc has {len(gc.layer_names)}; same model needed")
    checks.choice("formula", formula, ["library", "eq_s11"])
    if formula == "eq_s11":

        for m in nodes:
            if m.v_reset != 0.0 or not isinstance(m.surrogate_function, Rectangle) \
                    or abs(m.surrogate_function.gamma - float(m.v_threshold)) > 1e-12:
                raise ValueError("formula='eq_s11' needs hard reset to 0 and Rectangle(gamma=V_th) in every "
                                 "LIF layer (Eq. S10/S11); use formula='library' otherwise")
    out = []
    for li, m in enumerate(nodes):
        u, s = gc.tensors["u"][li], gc.tensors["s"][li]
        vr = 0.0 if m.v_reset is None else float(m.v_reset)
        if formula == "eq_s11":
            eps = [eq_s11(u[t].detach(), s[t].detach(), m.tau, float(m.v_threshold)).flatten()
                   for t in range(len(u) - 1)]
            out.append(torch.cat(eps) if eps else torch.zeros(0))
            continue
        eps = [epsilon_diagonal(u[t].detach(), s[t].detach(), m.tau, float(m.v_threshold), _node_reset(m),
                                m.surrogate_function, v_reset=vr).flatten() for t in range(len(u) - 1)]
        out.append(torch.cat(eps) if eps else torch.zeros(0))
    return out


def eq_s5_residual(model: nn.Module, gc) -> float:
    r"""Largest relative violation of Eq. S5's temporal term over layers and steps t < T:

    .. math:: \max_{l,t} \frac{\|\text{temporal}^l[t] - \frac{\partial L}{\partial u^l[t+1]}\,
              \epsilon^l[t]\|_\infty}{\max_{l,t}\|\partial L/\partial u^l[t]\|_\infty}

    where the temporal term is total minus spatial (:func:`snnlab.sltt.gradient_components`,
    ``keep_tensors=True``) and :math:`\epsilon` is computed in closed form. ~1e-7 in float32.
    """

    if gc.tensors is None:
        raise ValueError("gc has no tensors; call sltt.gradient_components(..., keep_tensors=True)")
    nodes = spiking_neurons(model)
    tot = gc.tensors["total"]
    scale = max(float(t.abs().max()) for layer in tot for t in layer) or 1.0
    worst = 0.0
    for li, m in enumerate(nodes):
        vr = 0.0 if m.v_reset is None else float(m.v_reset)
        for t in range(len(tot[li]) - 1):
            eps = epsilon_diagonal(gc.tensors["u"][li][t].detach(), gc.tensors["s"][li][t].detach(), m.tau,
                                   float(m.v_threshold), _node_reset(m), m.surrogate_function, v_reset=vr)
            pred = tot[li][t + 1].detach() * eps
            worst = max(worst, float((gc.tensors["temporal"][li][t].detach() - pred).abs().max()))
    return worst / scale


def temporal_summary(gc) -> dict[str, Any]:
    r"""Scalars of a :class:`snnlab.sltt.GradientComponents` over the steps t < T (at t = T the
    temporal term is 0 by definition):

    * ``mean_temporal_share``: mean over layers and t < T of :math:`\|tm\|/(\|sp\|+\|tm\|)`
      (NaN entries, where both are 0, skipped); ``max_temporal_share``;
    * ``temporal_to_total``: :math:`\sum_{l,t<T}\|tm\| / \sum_{l,t<T}\|\partial L/\partial u\|`;
    * ``min_cosine``: smallest cos(spatial, total) over layers and t < T;
    * ``per_layer_share``: mean share per layer.
    """
    share = gc.temporal_share[:, :-1] if gc.temporal_share.shape[1] > 1 else gc.temporal_share
    tm = gc.temporal_norm[:, :-1] if gc.temporal_norm.shape[1] > 1 else gc.temporal_norm
    tot = gc.total_norm[:, :-1] if gc.total_norm.shape[1] > 1 else gc.total_norm
    cos = gc.cosine[:, :-1] if gc.cosine.shape[1] > 1 else gc.cosine
    valid = ~torch.isnan(share)
    return {
        "mean_temporal_share": float(share[valid].mean()) if valid.any() else float("nan"),
        "max_temporal_share": float(share[valid].max()) if valid.any() else float("nan"),
        "temporal_to_total": float(tm.sum() / tot.sum()) if tot.sum() > 0 else float("nan"),
        "min_cosine": float(cos[~torch.isnan(cos)].min()) if (~torch.isnan(cos)).any() else float("nan"),
        "per_layer_share": [float(r[~torch.isnan(r)].mean()) if (~torch.isnan(r)).any() else float("nan")
                            for r in share],
    }


def weight_cosines(cosines: Mapping[str, float], model: nn.Module) -> dict[str, float]:
    """Per weight matrix / kernel (parameters with >= 2 dims, in model order): the entries of
    :func:`snnlab.sltt.bptt_sltt_cosine`, labelled ``"W1 (0.1.weight)"``, ..., the last one the readout."""
    names = [n for n, p in model.named_parameters() if p.dim() >= 2 and n in cosines]
    return {f"W{i + 1} ({n})": float(cosines[n]) for i, n in enumerate(names)}


def tau_sweep(taus: Sequence[float], setup: Setup, ds, x_seq: torch.Tensor, y: torch.Tensor,
              resets: Sequence[str] = RESETS, norm: str = "bn", seed: int = 0) -> list[dict[str, Any]]:
    r"""Temporal share and BPTT-vs-SLTT gradient cosine at initialisation for each :math:`\tau` and
    reset: the paper's observation rests on :math:`\lambda = 1 - 1/\tau` being small (0.09 at
    :math:`\tau = 1.1`). One row per (tau, reset): ``tau``, ``lam``, ``reset``, the
    :func:`temporal_summary` scalars and ``cos_all`` (all parameters)."""


    rows = []
    for tau in taus:
        st = replace(setup, tau=float(tau))
        for reset in resets:
            net = build_model(Variant("bptt", x_seq.shape[0], reset=reset, norm=norm, seed=seed), st, ds)
            net.train()
            gc = gradient_components(net, x_seq, y, st.loss_fn())
            summ = {k: v for k, v in temporal_summary(gc).items() if k != "per_layer_share"}
            cos = bptt_sltt_cosine(net, x_seq, y, st.loss_fn())["__all__"]
            rows.append({"tau": float(tau), "lam": 1 - 1 / float(tau), "reset": reset, **summ, "cos_all": cos})
    return rows
