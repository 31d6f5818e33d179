r"""LIF presets of the four papers, built on spikingjelly's ``LIFNode``.

All presets run in multi-step mode by default: input ``x_seq`` of shape ``[T, B, ...]``,
output spikes of the same shape. Spikingjelly's LIF charge equation is

.. math::

    H[t] = V[t-1] + \frac{1}{\tau}\bigl(X[t] - (V[t-1] - V_{reset})\bigr)  \quad\text{(decay_input=True)}

    H[t] = V[t-1] - \frac{1}{\tau}(V[t-1] - V_{reset}) + X[t]  \quad\text{(decay_input=False)}

followed by :math:`S[t] = \Theta(H[t] - V_{th})` and a hard (:math:`V = V_{reset}`) or soft
(:math:`V = H - V_{th} S`, when ``v_reset=None``) reset. With ``v_reset=None`` spikingjelly
leaks towards 0. The presets map the papers' equations onto it:

=========  ======================================================================  =============================
preset     paper's dynamics                                                        spikingjelly arguments
=========  ======================================================================  =============================
``lth``    :math:`H = (1-\frac1\tau)V + \frac1\tau X`, hard reset to 0, ATan        tau=4/3, decay_input=True,
                                                                                   v_reset=0, detach_reset=True
``sltt``   :math:`u[t] = (1-\frac1\tau)v[t-1] + W s[t]`, soft reset (Eq. S1/S8)     tau=1.1, decay_input=False,
                                                                                   v_reset=None, Rectangle(1)
``ssgd``   :math:`V[t] = \alpha V[t-1] + I[t]`, :math:`\alpha=e^{-\Delta t/\tau_m}`,  tau=1/(1-alpha),
           reset by subtraction, SuperSpike                                         decay_input=False, v_reset=None
=========  ======================================================================  =============================

Example
-------
>>> import torch
>>> lif_node = lif("sltt")
>>> x = torch.full((4, 1, 1), 0.6)          # [T, B, N]
>>> lif_node(x).flatten().tolist()           # u: 0.6, 0.6545, 0.6595, 0.66 ... never reaches 1
[0.0, 0.0, 0.0, 0.0]
>>> lif_node.reset()                          # clear the membrane between samples
>>> lif_node(torch.full((3, 1, 1), 1.2)).flatten().tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from spikingjelly.activation_based import neuron

from .. import checks
from . import surrogate as sg

__all__ = ["LIFPreset", "PRESETS", "lif", "ssgd_tau", "reference_trace", "simulate"]


@dataclass(frozen=True)
class LIFPreset:
    """A paper's LIF parameters in spikingjelly's terms.

    ``surrogate`` is a zero-argument factory so every neuron gets its own module.
    """

    tau: float
    v_threshold: float = 1.0
    v_reset: float | None = 0.0  # None: soft reset (subtract V_th)
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: Callable[[], torch.nn.Module] = field(default=sg.ATan)
    note: str = ""


def ssgd_tau(tau_mem: float = 10.0, dt: float = 1.0) -> float:
    r"""Spikingjelly's ``tau`` for the ssgd leak factor :math:`\alpha = e^{-\Delta t/\tau_{mem}}`.

    With ``decay_input=False`` spikingjelly leaks by :math:`1 - 1/\tau`, so
    :math:`\tau = 1/(1-\alpha)`. Defaults are ssgd Table 4 (10 ms membrane, 1 ms step).
    """
    if tau_mem <= 0 or dt <= 0:
        raise ValueError(f"tau_mem and dt must be positive, got tau_mem={tau_mem}, dt={dt}")
    return 1.0 / (1.0 - math.exp(-dt / tau_mem))


PRESETS: dict[str, LIFPreset] = {
    "lth": LIFPreset(
        tau=4.0 / 3.0,
        v_reset=0.0,
        decay_input=True,
        detach_reset=True,
        surrogate=sg.ATan,
        note="Kim et al. 2022: spikingjelly LIF, tau=4/3, hard reset to 0, ATan surrogate",
    ),
    "sltt": LIFPreset(
        tau=1.1,
        v_reset=None,
        decay_input=False,
        detach_reset=False,
        surrogate=sg.Rectangle,
        note="Meng et al. 2023 Eq. S1: u=(1-1/tau)v+Ws, soft reset, rectangle surrogate (gamma=V_th)",
    ),
    "ssgd": LIFPreset(
        tau=ssgd_tau(),
        v_reset=None,
        decay_input=False,
        detach_reset=False,
        surrogate=sg.SuperSpike,
        note="Perez-Nieves & Goodman 2021: V=alpha V+I, alpha=exp(-dt/tau_mem), subtractive reset, SuperSpike",
    ),
}

_LIF_KEYS = {"tau", "v_threshold", "v_reset", "decay_input", "detach_reset", "surrogate"}


def lif(preset: str = "lth", step_mode: str = "m", **overrides: Any) -> neuron.LIFNode:
    """Build a spikingjelly ``LIFNode`` from a paper preset.

    Parameters
    ----------
    preset: one of ``PRESETS`` (``"lth"``, ``"sltt"``, ``"ssgd"``).
    step_mode: ``"m"`` (input ``[T, B, ...]``, default) or ``"s"`` (input ``[B, ...]``).
    overrides: any of ``tau``, ``v_threshold``, ``v_reset`` (``None`` = soft reset),
        ``decay_input``, ``detach_reset``, ``surrogate`` (a module, a class, or a name from
        :data:`snnlab.surrogate.SURROGATES`), and ``store_v_seq``.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; allowed values: {sorted(PRESETS)}")
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode={step_mode!r} is unknown; allowed values: ['m', 's']")
    store_v_seq = bool(overrides.pop("store_v_seq", False))
    unknown = set(overrides) - _LIF_KEYS
    if unknown:
        raise ValueError(f"unknown LIF override(s) {sorted(unknown)}; allowed: {sorted(_LIF_KEYS)}")
    for key in ("tau", "v_threshold"):
        if key in overrides and not checks.is_real(overrides[key]):
            checks.fail(key, overrides[key], "real numbers" + (" > 1" if key == "tau" else " > 0"))
    if overrides.get("v_reset") is not None and not checks.is_real(overrides["v_reset"]):
        checks.fail("v_reset", overrides["v_reset"], "a real number below v_threshold, or None (soft reset)")
    p = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if k != "surrogate"})
    if not (p.tau > 1.0):
        raise ValueError(f"tau must be > 1 (spikingjelly leaks by 1-1/tau), got tau={p.tau}")
    if not (p.v_threshold > 0):
        raise ValueError(f"v_threshold must be > 0, got {p.v_threshold}")
    if p.v_reset is not None and not (p.v_reset < p.v_threshold):
        raise ValueError(f"v_reset must be below v_threshold or None (soft reset), got {p.v_reset}")
    surrogate_fn = _make_surrogate(overrides.get("surrogate", p.surrogate))
    return neuron.LIFNode(
        tau=p.tau,
        decay_input=p.decay_input,
        v_threshold=p.v_threshold,
        v_reset=p.v_reset,
        surrogate_function=surrogate_fn,
        detach_reset=p.detach_reset,
        step_mode=step_mode,
        store_v_seq=store_v_seq,
    )


def _make_surrogate(spec: Any) -> torch.nn.Module:
    if isinstance(spec, str):
        return sg.get(spec)
    if isinstance(spec, torch.nn.Module):
        return spec
    if callable(spec):
        return spec()
    raise ValueError(f"surrogate must be a name, a module or a class, got {spec!r}")


def reference_trace(
    x_seq: torch.Tensor,
    tau: float,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain-Python LIF recursion (no spikingjelly), for tests and explanatory plots.

    Returns ``(spikes, h)``: the spikes and the pre-reset membrane potential ``H[t]``, both
    shaped like ``x_seq`` ``[T, ...]``.
    """
    v = torch.zeros_like(x_seq[0]) if v_reset is None else torch.full_like(x_seq[0], v_reset)
    rest = 0.0 if v_reset is None else v_reset
    spikes, hs = [], []
    for x in x_seq:
        if decay_input:
            h = v + (x - (v - rest)) / tau
        else:
            h = v - (v - rest) / tau + x
        s = (h >= v_threshold).to(x.dtype)
        v = h - v_threshold * s if v_reset is None else torch.where(s > 0, torch.full_like(h, v_reset), h)
        spikes.append(s)
        hs.append(h)
    return torch.stack(spikes), torch.stack(hs)


def simulate(preset: str, x: torch.Tensor, **overrides: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Drive one neuron of ``preset`` with the input current ``x`` ``[T]``.

    Returns ``(v, spikes)``, both ``[T]``: the membrane potential after reset and the spikes.
    """
    if x.dim() != 1:
        raise ValueError(f"x must be a 1-D input current [T], got shape {tuple(x.shape)}")
    node = lif(preset, step_mode="m", store_v_seq=True, **overrides)
    with torch.no_grad():
        s = node(x.view(-1, 1))
    return node.v_seq.view(-1), s.view(-1)
