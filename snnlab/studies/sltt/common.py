"""Constants shared by the ``sltt`` study modules: method labels and colours, the neuron options of
the official code (github.com/qymeng94/SLTT), and the memory units."""

from __future__ import annotations

#: ``"bptt"``: fused multi-step BPTT (BN over T*B; the stronger baseline); ``"bptt_paper"``: the
#: paper's BPTT as the official ``train_BPTT.py`` runs it (per-step loop, per-step BN)
METHOD_LABELS = {"bptt": "BPTT", "bptt_paper": "BPTT (paper loop)", "sltt": "SLTT", "sltt_k": "SLTT-K"}
RESETS = ("soft", "hard")
#: the MSE target of the loss: ``"vth"`` (Eq. S13, phi = V_th) or ``"onehot"`` (Eq. S14, DVS-CIFAR10;
#: the official ``-mse_n_reg``)
LOSS_TARGETS = ("vth", "onehot")
#: the surrogates of the sltt neuron: ``"rectangle"`` (Eq. 5 of the paper, width gamma = V_th; the sltt
#: preset) and ``"triangle"`` (the official code's default ``-surrogate triangle``: spikingjelly's
#: ``PiecewiseQuadratic()``, :class:`snnlab.core.surrogate.Triangle` with gamma = 1)
SURROGATES = ("rectangle", "triangle")
#: per-channel (mean, std) of the official code (github.com/qymeng94/SLTT, ``train_SLTT.py`` /
#: ``train_BPTT.py``: ``transforms.Normalize`` of the CIFAR branch), used to standardise the images and
#: to write the augmentation's fills in those units
OFFICIAL_NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}
OPTIMIZERS = ("adam", "sgd")
METHOD_COLORS = {"bptt": "#d55e00", "bptt_paper": "#cc79a7", "sltt": "#0072b2", "sltt_k": "#009e73"}
METHOD_STYLE = {"bptt": dict(marker="o", ls="-"), "bptt_paper": dict(marker="^", ls=":"),
                "sltt": dict(marker="o", ls="-"), "sltt_k": dict(marker="s", ls="--")}
MIB = 2.0**20
#: copies of the parameters alive during SGD-with-momentum training (the official code's optimizer):
#: the weights, their gradients and the momentum buffer; with the saved activations they make the
#: modelled total training memory of :func:`memory_time_summary` (the paper reports total GPU memory)
STATE_COPIES = 3
