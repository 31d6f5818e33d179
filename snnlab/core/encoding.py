r"""Input encodings: static samples ``[B, ...]`` -> spike (or current) trains ``[T, B, ...]``.

* ``direct``: the analog sample repeated at every step (the first layer acts as the encoder);
* ``poisson``: Bernoulli spikes with probability = pixel intensity (clamped to [0, 1]);
* ``latency``: one spike per input at the time an LIF neuron driven by the intensity crosses its
  threshold (ssgd supplement, Sec. E.1: tau_eff = 20 ms, theta = 0.2, dt = 1 ms; Eq. 21),
  brighter inputs fire earlier, inputs below theta never fire.

:func:`to_time_major` turns a temporal dataset's ``[B, T, ...]`` into ``[T, B, ...]``;
:func:`encode_batch` picks between the two.

>>> import torch
>>> tuple(encode(torch.rand(4, 1, 8, 8), T=5, kind="direct").shape)
(5, 4, 1, 8, 8)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import checks

__all__ = ["ENCODINGS", "LATENCY_DEFAULTS", "encode", "latency_time", "to_time_major", "encode_batch",
           "AUGMENTATIONS", "augment_batch"]

ENCODINGS = ("direct", "poisson", "latency")
#: ssgd supplement, Sec. E.1 and Table E.6 (Fashion-MNIST column): tau_eff = 20 ms, theta = 0.2,
#: dt = 1 ms (T = 100 steps).
LATENCY_DEFAULTS = {"tau_eff": 20.0, "theta": 0.2, "dt": 1.0}


def _check_T(T) -> int:
    return checks.int_at_least("T", T, 1)


def _check_x(x) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() < 1:
        raise ValueError(f"x must be a tensor [B, ...]; got {type(x).__name__}"
                         + (f" of shape {tuple(x.shape)}" if torch.is_tensor(x) else ""))
    return x if x.is_floating_point() else x.to(torch.float32)


def _no_kw(kind: str, kw: dict) -> None:
    if kw:
        raise ValueError(f"encode(kind={kind!r}) takes no extra keywords; got {sorted(kw)}")


def _encode_direct(x, T, generator, **kw):
    _no_kw("direct", kw)
    return x.unsqueeze(0).repeat(T, *([1] * x.dim()))


def _encode_poisson(x, T, generator, **kw):
    _no_kw("poisson", kw)
    p = x.clamp(0.0, 1.0)
    device = generator.device if generator is not None else x.device
    u = torch.rand((T, *x.shape), generator=generator, device=device, dtype=torch.float64)
    return (u.to(x.device) < p.unsqueeze(0).to(torch.float64)).to(x.dtype)


def latency_time(x: torch.Tensor, tau_eff: float = LATENCY_DEFAULTS["tau_eff"],
                 theta: float = LATENCY_DEFAULTS["theta"]) -> torch.Tensor:
    r"""Spike time of the ssgd latency code (supplement Sec. E.1), in the units of ``tau_eff``:

    .. math:: T(x) = \tau_\mathrm{eff} \log\frac{x}{x - \theta} \text{ if } x > \theta,
              \quad \infty \text{ otherwise.}

    Returns a float64 tensor of the shape of ``x`` (``inf`` where no spike).
    """
    tau_eff = checks.positive("tau_eff", tau_eff)
    if (not isinstance(theta, (int, float, np.integer, np.floating)) or isinstance(theta, bool)
            or not 0 <= theta < 1):
        raise ValueError(f"theta={theta!r} is invalid: expected a number in [0, 1)")
    x = torch.as_tensor(x)
    # compare in the input's own precision: float32(0.2) is "equal to theta", not above it
    above = x > torch.tensor(theta, dtype=x.dtype) if x.is_floating_point() else x > theta
    xf = x.to(torch.float64)
    safe = torch.where(above, xf, torch.ones_like(xf))
    t = tau_eff * torch.log(safe / (safe - theta))
    return torch.where(above, t, torch.full_like(xf, math.inf))


def _encode_latency(x, T, generator, tau_eff=LATENCY_DEFAULTS["tau_eff"],
                    theta=LATENCY_DEFAULTS["theta"], dt=LATENCY_DEFAULTS["dt"], **kw):
    if kw:
        raise ValueError(f"encode(kind='latency') got unknown keyword(s) {sorted(kw)}; "
                         f"allowed: ['dt', 'tau_eff', 'theta']")
    dt = checks.positive("dt", dt)
    t = latency_time(x, tau_eff, theta)
    step = torch.floor(t / dt)                   # inf stays inf
    steps = torch.arange(T, dtype=torch.float64, device=x.device).view(T, *([1] * x.dim()))
    return (steps == step.unsqueeze(0)).to(x.dtype)


_ENCODERS = {"direct": _encode_direct, "poisson": _encode_poisson, "latency": _encode_latency}


def encode(x: torch.Tensor, T: int, kind: str = "direct",
           generator: torch.Generator | None = None, **kw) -> torch.Tensor:
    r"""Turn a static batch ``x: [B, ...]`` into a time-major sequence ``[T, B, ...]``.

    * ``"direct"``: ``out[t] = x`` for every step (analog input repeated).
    * ``"poisson"``: ``out[t] ~ Bernoulli(clip(x, 0, 1))`` independently per step and element,
      drawn from ``generator`` (same generator state, same spikes).
    * ``"latency"``: the ssgd latency code, at most one spike per input. The spike time
      ``T(x) = tau_eff * log(x / (x - theta))`` (for ``x > theta``; none otherwise) is
      discretised as step ``k = floor(T(x) / dt)``; the input spikes at step ``k`` if
      ``k < T``. Keywords ``tau_eff`` (20 ms), ``theta`` (0.2), ``dt`` (1 ms) default to the
      paper's Fashion-MNIST settings, where ``T = 100``; ``x = 1`` then spikes at step 4 and
      larger ``x`` spikes earlier. Deterministic (no generator needed).

    The output has the dtype of ``x`` (float32 for integer input) and values in {0, 1} for the
    spike codes.
    """
    T = _check_T(T)
    if kind not in _ENCODERS:
        raise ValueError(f"kind={kind!r} is not a known encoding; allowed: {list(ENCODINGS)}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    x = _check_x(x)
    return _ENCODERS[kind](x, T, generator, **kw)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, ...] -> [T, B, ...]`` for batches of temporal datasets (``is_temporal``).

    Returns a contiguous tensor.
    """
    if not torch.is_tensor(x) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [B, T, ...] with at least 2 dimensions; got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    return x.transpose(0, 1).contiguous()


def encode_batch(x: torch.Tensor, T: int, encoding: str, temporal: bool, generator: torch.Generator | None):
    """``[B, ...]`` static input -> ``[T, B, ...]`` by ``encoding``; temporal input ``[B, T, ...]``
    is only made time-major (its own T is kept)."""
    if temporal:
        return to_time_major(x)
    return encode(x, T, encoding, generator=generator)


# --- training-time augmentation of static images -------------------------------------------------

#: augmentations understood by :func:`augment_batch` (``"none"``: the input unchanged)
AUGMENTATIONS = ("none", "crop_flip_cutout")


def _randint(lo: int, hi: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``lo..hi`` inclusive (like ``random.randint``)."""
    return int(torch.randint(lo, hi + 1, (1,), generator=generator))


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))


def augment_batch(x: torch.Tensor, kind: str = "crop_flip_cutout", generator: torch.Generator | None = None,
                  pad: int = 4, mean: Any = None, std: Any = None) -> torch.Tensor:
    r"""The CIFAR training augmentation of the SLTT authors' official code, on a batch ``[B, C, H, W]``.

    Facts from the official repository (github.com/qymeng94/SLTT, ``train_BPTT.py``,
    ``train_SLTT.py``, ``train_SLTTK.py``, CIFAR branch): ``transforms.Compose([RandomCrop(32,
    padding=4), Cutout(), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])`` with
    ``Cutout`` from ``torchtoolbox.transform`` (0.1.8.2, ``transforms.py``) at its defaults. Per
    sample, in this order:

    1. random crop: zero-pad ``pad`` pixels on every side (torchvision's default fill 0, a black
       pixel), crop H x W at a uniform offset in ``0..2*pad`` per axis;
    2. Cutout (torchtoolbox defaults ``p=0.5, scale=(0.02, 0.4), ratio=(0.4, 2.5), value=(0, 255)``):
       with probability 1/2 draw :math:`s\sim U(0.02, 0.4)`, :math:`r\sim U(0.4, 2.5)`,
       ``w = int(sqrt(s*H*W/r))``, ``h = int(sqrt(s*H*W*r))``, ``left`` in ``0..W-w``, ``top`` in
       ``0..H-h`` and one integer ``c`` in ``0..255``; the box is filled by PIL's ``paste(c)`` of an
       integer ink, which on an RGB image writes the packed colour ``(c, 0, 0)``: channel 0 gets
       ``c/255``, the other channels 0 (a 1-channel image gets ``c/255``);
    3. horizontal flip with probability 1/2.

    Pixel values are in [0, 1] (after ``ToTensor``). If the data are already normalised, pass the
    per-channel ``mean`` and ``std``: the fills (0 and ``c/255``) are then written in normalised
    units, ``(fill - mean)/std``, as the official pipeline normalises after augmenting.
    Randomness comes from ``generator`` (torch), so a seeded run is reproducible; it is not the
    official code's Python ``random`` stream. ``kind="none"`` returns ``x``.
    """
    checks.choice("augment", kind, AUGMENTATIONS)
    if kind == "none":
        return x
    if not torch.is_tensor(x) or x.dim() != 4:
        raise ValueError(f"augment_batch needs static images [B, C, H, W]; got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    pad = checks.int_at_least("pad", pad, 0)
    B, C, H, W = x.shape
    m = torch.zeros(C, dtype=x.dtype) if mean is None else torch.as_tensor(mean, dtype=x.dtype).reshape(C)
    s = torch.ones(C, dtype=x.dtype) if std is None else torch.as_tensor(std, dtype=x.dtype).reshape(C)

    def pixel(v: torch.Tensor) -> torch.Tensor:  # a pixel-space fill per channel -> data units
        return ((v - m) / s).to(x.device).view(C, 1, 1)

    black = pixel(torch.zeros(C, dtype=x.dtype))
    padded = black.expand(C, H + 2 * pad, W + 2 * pad).repeat(B, 1, 1, 1)
    padded[:, :, pad:pad + H, pad:pad + W] = x
    out = torch.empty_like(x)
    for b in range(B):
        i, j = _randint(0, 2 * pad, generator), _randint(0, 2 * pad, generator)
        img = padded[b, :, i:i + H, j:j + W].clone()
        if _uniform(0, 1, generator) < 0.5:
            area = _uniform(0.02, 0.4, generator) * H * W
            r = _uniform(0.4, 1 / 0.4, generator)
            w, h = int(math.sqrt(area / r)), int(math.sqrt(area * r))
            left, top = _randint(0, W - w, generator), _randint(0, H - h, generator)
            c = _randint(0, 255, generator)
            ink = torch.zeros(C, dtype=x.dtype)
            ink[0] = c / 255.0
            img[:, top:top + h, left:left + w] = pixel(ink)
        if _uniform(0, 1, generator) < 0.5:
            img = img.flip(-1)
        out[b] = img
    return out
