"""Model builders: shapes on 8x8 and 32x32, ANN twins, single-step == multi-step, sWS."""

import pytest
import torch
from spikingjelly.activation_based import functional

from snnlab.core import models


@pytest.mark.parametrize("name", models.ARCHITECTURES)
@pytest.mark.parametrize("size, cin", [(8, 1), (32, 3)])
def test_shapes_and_twin(name, size, cin):
    net = models.build(name, num_classes=7, in_channels=cin, input_size=size, width=0.125)
    out = net(torch.rand(3, 2, cin, size, size))
    assert out.shape == (3, 2, 7)
    ann = models.build(name, num_classes=7, in_channels=cin, input_size=size, width=0.125, spiking=False)
    assert ann(torch.rand(2, cin, size, size)).shape == (2, 7)
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in ann.named_parameters()]
    ann.load_state_dict(net.state_dict())  # same parameter and buffer names: transfer works
    assert len(models.spiking_neurons(net)) > 0 and len(models.spiking_neurons(ann)) == 0


def test_width_multiplier_scales_parameters():
    small = sum(p.numel() for p in models.build("vgg11", 10, 3, 32, width=0.25).parameters())
    big = sum(p.numel() for p in models.build("vgg11", 10, 3, 32, width=0.5).parameters())
    assert 3.5 < big / small < 4.1  # conv weights scale with width^2


@pytest.mark.parametrize("norm", ["none", "sws", "bn"])
def test_single_step_equals_multi_step(norm):
    torch.manual_seed(0)
    net = models.build("vgg11", 5, 1, 8, width=0.125, norm=norm, neuron="sltt").double().eval()
    x = torch.rand(4, 3, 1, 8, 8, dtype=torch.float64) * 3
    multi = net(x)
    functional.reset_net(net)
    functional.set_step_mode(net, "s")
    single = torch.stack([net(xt) for xt in x])
    torch.testing.assert_close(multi, single)


def test_sws_standardises_each_fan_in():
    conv = models.ScaledWSConv2d(3, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(5).add_(2)
    w = models._standardize(conv.weight, conv.gain, 1.0, 0.0).detach()
    fan_in = 3 * 3 * 3
    flat = w.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False) * fan_in, torch.ones(4), atol=1e-4, rtol=0)


def test_neuron_options_reach_the_nodes():
    net = models.build("mlp", 3, 1, 4, neuron="sltt", v_reset=0.0, surrogate="triangle")
    node = models.spiking_neurons(net)[0]
    assert node.v_reset == 0.0 and type(node.surrogate_function).__name__ == "Triangle"
    assert models.build("mlp", 10, in_features=40, hidden=(16,))(torch.rand(2, 5, 1, 40)).shape == (2, 5, 10)


@pytest.mark.parametrize(
    "kw, word",
    [(dict(name="alexnet"), "name"), (dict(norm="ln"), "norm"), (dict(width=0), "width"),
     (dict(num_classes=0), "num_classes"), (dict(pool="min"), "pool"), (dict(dropout=1.0), "dropout")],
)
def test_bad_input(kw, word):
    args = {"name": "vgg11", "num_classes": 10, **kw}
    with pytest.raises(ValueError, match=word):
        models.build(**args)
