"""Trainer: exact resume after a crash, per-prefix accuracy, TET loss, spike counts, bad config."""

import pytest
import torch
import torch.nn.functional as F

from snnlab import data, train
from snnlab.core import models
from spikingjelly.activation_based import functional


@pytest.fixture(scope="module")
def digits():
    tr, te = data.load("digits", "train"), data.load("digits", "test")
    return (torch.utils.data.TensorDataset(tr.tensors[0][:256], tr.tensors[1][:256]),
            torch.utils.data.TensorDataset(te.tensors[0][:128], te.tensors[1][:128]))


def _net(seed=0):
    torch.manual_seed(seed)
    return models.build("mlp", 10, 1, 8, hidden=(32,))


def _strip(history):
    return [{k: v for k, v in h.items() if k != "time_s"} for h in history]


class Crash:
    def after_epoch(self, epoch, model, record):
        if epoch == 2:
            raise KeyboardInterrupt("simulated crash")


def test_resume_after_crash_gives_same_numbers(digits, tmp_path):
    tr, te = digits
    cfg = dict(epochs=3, lr=3e-3, T=3, batch_size=32, encoding="poisson", progress=False)  # poisson: RNG matters
    full = train.fit(_net(), tr, te, train.TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "a")))
    with pytest.raises(KeyboardInterrupt):
        train.fit(_net(), tr, te, train.TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), hooks=[Crash()])
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 1
    net = _net(seed=123)  # a different init: everything must come from the checkpoint
    resumed = train.fit(net, tr, te, train.TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "b")))
    assert _strip(resumed) == _strip(full)
    again = train.fit(_net(), tr, te, train.TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "a")))
    assert _strip(again) == _strip(full)  # a finished run is loaded, not retrained
    with pytest.raises(ValueError, match="different configuration"):
        train.fit(_net(), tr, te, train.TrainConfig(**{**cfg, "lr": 1e-2}, checkpoint_dir=str(tmp_path / "a")))


def test_training_learns_and_evaluate_matches_hand_computation(digits):
    tr, te = digits
    net = _net()
    hist = train.fit(net, tr, te, train.TrainConfig(epochs=4, lr=5e-3, T=4, batch_size=32, progress=False))
    assert hist[-1]["test_acc"] > 0.6 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    ev = train.evaluate(net, te, T=4)
    x, y = te.tensors
    with torch.no_grad():
        net.eval()
        out = net(x.unsqueeze(0).repeat(4, 1, 1, 1, 1))
    functional.reset_net(net)
    expect = [(out[:t].sum(0).argmax(-1) == y).float().mean().item() for t in range(1, 5)]
    assert ev["acc_per_t"] == pytest.approx(expect) and ev["acc"] == ev["acc_per_t"][-1]
    assert ev["logits"].shape == (4, 128, 10)
    assert 0 < ev["spikes_per_sample"] <= 4 * 32 and len(ev["firing_rate"]) == 1


def test_tet_loss_formula():
    o = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    lam = 0.05
    expect = (1 - lam) * F.cross_entropy(o, y) + lam * ((o - 1.0) ** 2).mean()
    torch.testing.assert_close(train.TETLoss(lam=lam)(o, y), expect)
    onehot = F.one_hot(y, 4).double()
    torch.testing.assert_close(train.TETLoss(lam=lam, target="onehot")(o, y),
                               (1 - lam) * F.cross_entropy(o, y) + lam * ((o - onehot) ** 2).mean())
    assert train.make_loss("ce") is train.ce_loss


def test_bptt_step_is_mean_of_per_step_losses():
    torch.manual_seed(0)
    net = models.build("mlp", 3, 1, 2, hidden=(6,), neuron="sltt").double()
    x = torch.rand(5, 4, 1, 2, 2, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 2, 0])
    loss = train.bptt_step(net, x, y, train.ce_loss)
    functional.reset_net(net)
    out = net(x)
    assert loss == pytest.approx(sum(F.cross_entropy(o, y).item() for o in out) / 5)


@pytest.mark.parametrize(
    "kw, word",
    [(dict(T=0), "T"), (dict(lr=-1.0), "lr"), (dict(epochs=0), "epochs"), (dict(optimizer="lion"), "optimizer"),
     (dict(loss="hinge"), "loss"), (dict(weight_decay=-1.0), "weight_decay"), (dict(schedule="step"), "schedule")],
)
def test_bad_config(kw, word):
    with pytest.raises(ValueError, match=word):
        train.TrainConfig(**kw).validate()
    with pytest.raises(ValueError, match="seed"):
        train.seed_everything(-1)
