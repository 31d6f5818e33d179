r"""Dense against sparse training of the paper's networks (supplement E.1-E.6, F.1-F.2, G).

A network is a stack of :func:`snnlab.grad.sparse_backward.lif_layer` hidden layers and a
:func:`~snnlab.grad.sparse_backward.readout` (E.3), optionally behind a convolutional spiking first
layer (E.3's convolutional experiment; dense autograd there). Two gradients are compared:

* ``backward="sparse"``: the sparse layer with the band :math:`|V - V_{th}| < B_{th}` (Eq. 20);
* ``backward="dense"``: autograd over the time loop with the **full** SuperSpike surrogate
  (:math:`B_{th} = \infty`, E.5), the "original gradient" the paper compares against. (With the same
  band, the dense loop's gradients equal the sparse ones exactly; that is a test, not an experiment.)

Inputs are latency coded (E.1, :func:`snnlab.core.encoding.encode` ``kind="latency"``) per batch;
temporal datasets (N-MNIST, SHD) are binarised frames. The loss is E.4 in its meaningful form
(:func:`loss_terms`): cross-entropy :math:`-\frac1B\sum y\log p` plus the two activity *penalties*
:math:`\frac{\lambda_{low}}{N}\sum_i \max(0, \nu_{low} - \zeta_i)^2` and
:math:`\lambda_{up}\max(0, \frac1N\sum_i\zeta_i - \nu_{up})`, averaged over the batch and summed over
hidden layers; ``signs="printed"`` flips the three signs as the supplement prints them (erratum).

:func:`train` runs one :class:`Spec` through :func:`snnlab.train.runs.cached_run` (key = spec + data
content + code version) with a checkpoint after every epoch (resumed exactly when interrupted).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ... import checks, data
from ...core import encoding
from ...grad import sparse_backward as sb
from ...record import params
from ...train import checkpoint
from ...train.runs import cached_run

__all__ = ["Spec", "INITS", "SIGNS", "BACKWARDS", "FULL_B_TH", "alpha_of", "load_data", "to_spikes", "init_weights",
           "forward", "loss_terms", "train", "train_pair", "conv_lif", "table3_spec"]

INITS = ("official", "official_uniform", "printed")
SIGNS = ("meaningful", "printed")
BACKWARDS = ("sparse", "dense")
TEMPORAL = ("nmnist", "shd")
#: the band of the dense runs: wide enough that every V is inside (the full SuperSpike surrogate, E.5;
#: the layer takes finite B_th only)
FULL_B_TH = 1e6


def alpha_of(tau_ms: float, dt_ms: float) -> float:
    """The leak :math:`\\alpha = e^{-\\Delta t/\\tau}` (E.2)."""
    return math.exp(-checks.positive("dt", dt_ms) / checks.positive("tau", tau_ms))


@dataclass(frozen=True)
class Spec:
    """Everything that determines one training run (hashed into the cache key)."""

    dataset: str = "digits"
    backward: str = "sparse"
    hidden: tuple = (200, 200)
    conv_channels: int = 0          # > 0: a convolutional spiking first layer (3x3, stride 1) + 2x2 max pool
    T: int = 50
    dt: float = 2.0                 # ms per step (Table 3: 1 ms; quick: 2 ms so T = 50 covers 100 ms)
    tau_mem: float = 10.0
    tau_out: float = 10.0
    tau_eff: float = 20.0
    theta: float = 0.2
    v_th: float = 1.0
    b_th: float = 0.2
    beta: float = 100.0
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    betas: tuple = (0.9, 0.999)
    lam_low: float = 100.0
    nu_low: float = 0.001
    lam_up: float = 0.06
    nu_up: float = 1.0
    logits: str = "max"
    init: str = "official"
    signs: str = "meaningful"
    dense_surrogate: str = "full"   # dense runs: "full" SuperSpike (the paper's baseline) or the same "band"
    max_train: int | None = None
    max_test: int | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def validate(self) -> "Spec":
        checks.choice("dataset", self.dataset, data.available())
        checks.choice("backward", self.backward, BACKWARDS)
        checks.choice("init", self.init, INITS)
        checks.choice("signs", self.signs, SIGNS)
        checks.choice("logits", self.logits, ["max", "sum"])
        checks.choice("dense_surrogate", self.dense_surrogate, ["full", "band"])
        if self.hidden or not self.conv_channels:  # a conv network may go straight to the readout (E.3)
            checks.int_list("hidden", list(self.hidden), 1)
        for name in ("T", "epochs", "batch_size"):
            checks.int_at_least(name, getattr(self, name), 1)
        checks.int_at_least("conv_channels", self.conv_channels, 0)
        for name in ("dt", "tau_mem", "tau_out", "tau_eff", "b_th", "beta", "lr"):
            checks.positive(name, getattr(self, name))
        for name in ("lam_low", "nu_low", "lam_up", "nu_up"):
            checks.non_negative(name, getattr(self, name))
        return self

    @property
    def alpha(self) -> float:
        return alpha_of(self.tau_mem, self.dt)

    @property
    def alpha_out(self) -> float:
        return alpha_of(self.tau_out, self.dt)

    @property
    def grad_b_th(self) -> float:
        """The band the gradient uses: ``b_th`` (sparse) or :data:`FULL_B_TH` (dense: the full surrogate)."""
        return self.b_th if (self.backward == "sparse" or self.dense_surrogate == "band") else FULL_B_TH


def table3_spec(dataset: str, **over) -> Spec:
    """The paper's settings for ``fmnist`` / ``nmnist`` / ``shd`` (Table 3) as a :class:`Spec`."""
    t3 = params.load("ssgd")["reference"]["table3"][dataset]
    name = {"fmnist": "fashion_mnist"}.get(dataset, dataset)
    spec = Spec(dataset=name, hidden=(t3["n_hidden"],) * 2, T=t3["T"], dt=t3["dt_ms"], tau_mem=t3["tau_hidden_ms"],
                tau_out=t3["tau_readout_ms"], tau_eff=t3["tau_eff_ms"] or 20.0, theta=t3["theta"] or 0.2,
                v_th=t3["v_th"], b_th=t3["b_th"], beta=t3["beta"], epochs=t3["epochs"], batch_size=t3["batch_size"],
                lr=t3["lr"], betas=tuple(t3["betas"]), lam_low=t3["lambda_low"], nu_low=t3["nu_low"],
                lam_up=t3["lambda_up"], nu_up=t3["nu_up"], logits="sum" if dataset == "shd" else "max",
                init="official" if dataset == "fmnist" else "official_uniform")
    return replace(spec, **over)


# --- data -------------------------------------------------------------------------------------


def load_data(spec: Spec) -> tuple[data.ArrayDataset, data.ArrayDataset]:
    """``(train, test)``: static sets as ``[N, C, H, W]`` / ``[N, 1, L]`` in [0, 1] (MNIST-1D min-max
    scaled with the training set's range); temporal sets binarised to ``[N, T, ...]``."""
    kw = {}
    if spec.dataset == "nmnist":
        kw = {"frames": spec.T, "binary": True}
    elif spec.dataset == "shd":
        kw = {"T": spec.T, "binary": True, "duration": spec.T * spec.dt / 1000.0}
    tr = data.load(spec.dataset, "train", **kw)
    te = data.load(spec.dataset, "test", **kw)
    if spec.dataset == "mnist1d":  # each signal min-max scaled to [0, 1] (its own range)
        tr, te = (data.ArrayDataset(_minmax(d.x), d.y, name=d.name, split=d.split,
                                    num_classes=d.num_classes, is_temporal=False) for d in (tr, te))
    return _cut(tr, spec.max_train), _cut(te, spec.max_test)


def _minmax(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).reshape(x.shape)


def _cut(ds, n):
    if n is None or n >= len(ds):
        return ds
    return data.ArrayDataset(ds.x[:n], ds.y[:n], name=ds.name, split=ds.split, num_classes=ds.num_classes,
                             is_temporal=ds.is_temporal)


def to_spikes(x: torch.Tensor, spec: Spec, temporal: bool) -> torch.Tensor:
    """A batch ``[B, ...]`` -> time-major spikes: ``[T, B, N_in]``, or ``[T, B, C, H, W]`` for the
    convolutional network (static inputs latency coded, E.1)."""
    if temporal:
        s = encoding.to_time_major((x > 0).to(torch.float32))
    else:
        s = encoding.encode(x, spec.T, "latency", tau_eff=spec.tau_eff, theta=spec.theta, dt=spec.dt)
    return s if spec.conv_channels else s.reshape(s.shape[0], s.shape[1], -1)


# --- network ----------------------------------------------------------------------------------


def init_weights(sizes: list[int], init: str, alpha: float, generator: torch.Generator) -> list[torch.Tensor]:
    r"""One ``[N_in, N_out]`` weight per consecutive pair of ``sizes``:

    * ``"official"``: :math:`\mathcal N(0, (20(1-\alpha))^2/N)` (official code, F-MNIST);
    * ``"official_uniform"``: :math:`\mathcal U(-1/\sqrt N, 1/\sqrt N)` (official code, N-MNIST, SHD);
    * ``"printed"``: :math:`\mathcal U(-\sqrt N, \sqrt N)` as E.3 prints it (erratum).
    """
    checks.choice("init", init, INITS)
    ws = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if init == "official":
            w = torch.randn(n_in, n_out, generator=generator) * (20 * (1 - alpha) / math.sqrt(n_in))
        else:
            a = math.sqrt(n_in) if init == "printed" else 1 / math.sqrt(n_in)
            w = (2 * torch.rand(n_in, n_out, generator=generator) - 1) * a
        ws.append(w.requires_grad_())
    return ws


def conv_lif(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float, b_th: float, beta: float):
    """The convolutional spiking layer (E.3), dense autograd: ``x [T, B, C, H, W]`` -> (spikes, v) with
    the Eq. 20 surrogate (band ``b_th``; ``math.inf`` = the full surrogate); same recurrence as
    :func:`~snnlab.grad.sparse_backward.lif_layer` (reset not differentiated)."""
    T, B = x.shape[:2]
    cur = F.conv2d(x.reshape(T * B, *x.shape[2:]), weight, padding=weight.shape[-1] // 2)
    cur = cur.reshape(T, B, *cur.shape[1:])
    v = torch.zeros_like(cur[0])
    s = torch.zeros_like(v)
    ss, vs = [], []
    for t in range(T):
        v = alpha * v + cur[t] - v_th * s.detach()
        g = sb.surrogate(v.detach(), v_th, b_th, beta)
        s = (v.detach() > v_th).to(v.dtype) + g * (v - v.detach())  # forward: Heaviside; d s / d v = g
        ss.append(s)
        vs.append(v)
    return torch.stack(ss), torch.stack(vs)


@dataclass
class Model:
    spec: Spec
    conv: torch.Tensor | None
    hidden: list
    out: torch.Tensor

    def parameters(self) -> list[torch.Tensor]:
        return ([self.conv] if self.conv is not None else []) + list(self.hidden) + [self.out]

    def state(self) -> dict:
        return {"params": [p.detach().clone() for p in self.parameters()]}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for p, q in zip(self.parameters(), state["params"]):
                p.copy_(q)


def build_model(spec: Spec, n_in: int | tuple, n_classes: int, generator: torch.Generator) -> Model:
    """Weights for ``spec``: ``n_in`` an int (fully connected) or ``(C, H, W)`` (convolutional)."""
    conv = None
    if spec.conv_channels:
        C, H, W = n_in
        k = 3
        fan = C * k * k
        conv = init_weights([fan, spec.conv_channels], spec.init, spec.alpha, generator)[0]
        conv = conv.detach().t().reshape(spec.conv_channels, C, k, k).contiguous().requires_grad_()
        n_in = spec.conv_channels * (H // 2) * (W // 2)
    ws = init_weights([n_in, *spec.hidden, n_classes], spec.init, spec.alpha, generator)
    with torch.no_grad():  # the official readout integrates (1 - alpha_out) S W: the same scale at init
        ws[-1].mul_(1 - spec.alpha_out)
    return Model(spec, conv, ws[:-1], ws[-1])


@dataclass
class Output:
    logits: torch.Tensor
    spikes: list
    v: list


def forward(model: Model, x: torch.Tensor) -> Output:
    """One batch through the network; ``x`` from :func:`to_spikes`."""
    sp = model.spec
    spikes, vs = [], []
    h, active = x, None
    if model.conv is not None:
        s, v = conv_lif(x, model.conv, sp.alpha, sp.v_th, sp.grad_b_th, sp.beta)
        spikes.append(s.flatten(2))
        vs.append(v.flatten(2))
        T, B = s.shape[:2]
        h = F.max_pool2d(s.reshape(T * B, *s.shape[2:]), 2).reshape(T, B, -1)
    for w in model.hidden:
        s, v = sb.lif_layer(h, w, sp.alpha, sp.v_th, sp.grad_b_th, sp.beta, backward=sp.backward,
                            input_active=active)
        spikes.append(s)
        vs.append(v)
        active = sb.active_mask(v, sp.v_th, sp.b_th) if sp.backward == "sparse" else None
        h = s
    logits, _ = sb.readout(h, model.out, sp.alpha_out, sp.logits)
    return Output(logits, spikes, vs)


def loss_terms(logits: torch.Tensor, y: torch.Tensor, spikes: list, lam_low: float, nu_low: float,
               lam_up: float, nu_up: float, signs: str = "meaningful") -> dict[str, torch.Tensor]:
    r"""E.4: ``{"ce", "low", "up", "total"}``. Meaningful signs: all three terms are penalties
    (:math:`\ge 0`); ``signs="printed"``: as the supplement prints them (CE without its minus,
    :math:`L^{low}` and :math:`L^{up}` with a leading minus)."""
    checks.choice("signs", signs, SIGNS)
    ce = F.cross_entropy(logits, y)
    low = logits.new_zeros(())
    up = logits.new_zeros(())
    for s in spikes:
        zeta = s.sum(0)  # [B, N] spike counts
        low = low + (lam_low / zeta.shape[1] * (F.relu(nu_low - zeta) ** 2).sum(1)).mean()
        up = up + (lam_up * F.relu(zeta.mean(1) - nu_up)).mean()
    sgn = 1.0 if signs == "meaningful" else -1.0
    return {"ce": sgn * ce, "low": sgn * low, "up": sgn * up, "total": sgn * (ce + low + up)}


# --- training ---------------------------------------------------------------------------------


def _batches(n: int, bs: int, gen: torch.Generator | None):
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return [idx[i:i + bs] for i in range(0, n, bs)]


def _layer_stats(out: Output, spec: Spec) -> tuple[list, list]:
    rho = [sb.active_fraction(v, spec.v_th, spec.b_th) for v in out.v]
    rate = [float(s.detach().mean()) for s in out.spikes]
    return rho, rate


def evaluate(model: Model, ds, spec: Spec, batch_size: int = 256) -> dict:
    """Test loss (E.4 total with meaningful signs), accuracy, and per-layer active fraction / spike rate."""
    n, correct, loss = 0, 0, 0.0
    rho_acc, rate_acc = None, None
    with torch.no_grad():
        for idx in _batches(len(ds), batch_size, None):
            x = to_spikes(ds.x[idx], spec, ds.is_temporal)
            out = forward(model, x)
            lt = loss_terms(out.logits, ds.y[idx], out.spikes, spec.lam_low, spec.nu_low, spec.lam_up, spec.nu_up)
            rho, rate = _layer_stats(out, spec)
            k = len(idx)
            rho_acc = [k * r for r in rho] if rho_acc is None else [a + k * r for a, r in zip(rho_acc, rho)]
            rate_acc = [k * r for r in rate] if rate_acc is None else [a + k * r for a, r in zip(rate_acc, rate)]
            loss += k * float(lt["total"])
            correct += int((out.logits.argmax(1) == ds.y[idx]).sum())
            n += k
    return {"loss": loss / n, "acc": correct / n, "rho": [r / n for r in rho_acc], "rate": [r / n for r in rate_acc]}


def _fit(spec: Spec, train_ds, test_ds, ckpt_dir: str | None, progress: bool) -> dict:
    gen = torch.Generator().manual_seed(spec.seed)
    torch.manual_seed(spec.seed)
    n_in = train_ds.input_shape if spec.conv_channels else int(math.prod(train_ds.input_shape[1:] if
                                                                          train_ds.is_temporal else
                                                                          train_ds.input_shape))
    model = build_model(spec, n_in, train_ds.num_classes, gen)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, betas=tuple(spec.betas))
    hist = {k: [] for k in ("train_loss", "train_ce", "train_acc", "train_rho", "train_rate", "test_loss",
                            "test_acc", "test_rho", "test_rate", "fwd_s", "bwd_s", "batch_loss")}
    start = 0
    path = None
    if ckpt_dir is not None:
        path = Path(ckpt_dir) / "last.pt"
        if path.exists():
            st = checkpoint.load(path)
            model.load(st["model"])
            opt.load_state_dict(st["opt"])
            hist = st["hist"]
            start = int(st["epoch"])
            checkpoint.set_rng_state(st["rng"], gen)
    bar = tqdm(range(start, spec.epochs), desc=f"{spec.dataset} {spec.backward}", disable=not progress, leave=False)
    for ep in bar:
        tot, ce_tot, correct, n, fwd, bwd = 0.0, 0.0, 0, 0, 0.0, 0.0
        rho_ep, rate_ep = [], []
        for idx in _batches(len(train_ds), spec.batch_size, gen):
            x = to_spikes(train_ds.x[idx], spec, train_ds.is_temporal)
            y = train_ds.y[idx]
            t0 = time.perf_counter()
            out = forward(model, x)
            lt = loss_terms(out.logits, y, out.spikes, spec.lam_low, spec.nu_low, spec.lam_up, spec.nu_up,
                            spec.signs)
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            lt["total"].backward()
            t2 = time.perf_counter()
            opt.step()
            fwd, bwd = fwd + t1 - t0, bwd + t2 - t1
            k = len(idx)
            tot += k * float(lt["total"].detach())
            ce_tot += k * float(F.cross_entropy(out.logits.detach(), y))
            correct += int((out.logits.argmax(1) == y).sum())
            n += k
            rho, rate = _layer_stats(out, spec)
            rho_ep.append(rho)
            rate_ep.append(rate)
            hist["batch_loss"].append(float(lt["total"].detach()))
        ev = evaluate(model, test_ds, spec)
        hist["train_loss"].append(tot / n)
        hist["train_ce"].append(ce_tot / n)
        hist["train_acc"].append(correct / n)
        hist["train_rho"].append([sum(c) / len(c) for c in zip(*rho_ep)])
        hist["train_rate"].append([sum(c) / len(c) for c in zip(*rate_ep)])
        hist["test_loss"].append(ev["loss"])
        hist["test_acc"].append(ev["acc"])
        hist["test_rho"].append(ev["rho"])
        hist["test_rate"].append(ev["rate"])
        hist["fwd_s"].append(fwd)
        hist["bwd_s"].append(bwd)
        if path is not None:
            checkpoint.save(path, {"model": model.state(), "opt": opt.state_dict(), "hist": hist, "epoch": ep + 1,
                                   "rng": checkpoint.rng_state(gen)})
    return {"spec": _spec_dict(spec), "history": hist, "weights": model.state()["params"]}


def _spec_dict(spec: Spec) -> dict:
    d = asdict(spec)
    d["hidden"], d["betas"] = list(spec.hidden), list(spec.betas)
    return d


def train(spec: Spec, datasets=None, cache: bool = True, progress: bool = True) -> dict:
    """Train ``spec`` (cached; per-epoch checkpoints): ``{"spec", "history", "weights"}`` where history
    holds per-epoch train/test loss and accuracy, per-layer active fraction ``rho`` (|V - V_th| < B_th)
    and spike rate, and the forward/backward seconds of the epoch."""
    spec.validate()
    train_ds, test_ds = datasets if datasets is not None else load_data(spec)
    return cached_run("ssgd-train", _spec_dict(spec), [train_ds, test_ds],
                      lambda run: _fit(spec, train_ds, test_ds, run.checkpoint_dir, progress), cache=cache)


def train_pair(spec: Spec, datasets=None, cache: bool = True, progress: bool = True) -> dict[str, dict]:
    """The same spec trained with the dense (full surrogate) and the sparse gradient, same seed and init."""
    ds = datasets if datasets is not None else load_data(spec)
    return {b: train(replace(spec, backward=b), ds, cache, progress) for b in BACKWARDS}
