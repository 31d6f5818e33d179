"""papers: every paper.yaml loads; parameter validation names the bad parameter before work."""

import pytest

from snnlab import papers

BASE = dict(seed=0, dataset="digits", T=4, epochs=2, lr=1e-3, batch_size=32, sparsity=0.5, INTERACTIVE=False)


def test_every_paper_yaml_loads():
    ids = papers.list_papers()
    assert "basics" in ids
    for pid in ids:
        meta = papers.load(pid)
        assert meta["id"] == pid and meta.get("title")


@pytest.mark.parametrize(
    "override, name",
    [(dict(T=0), "T"), (dict(lr=-0.1), "lr"), (dict(sparsity=1.0), "sparsity"), (dict(sparsity=-0.1), "sparsity"),
     (dict(dataset="imagenet-on-a-floppy"), "dataset"), (dict(epochs=0), "epochs"), (dict(seed=-1), "seed"),
     (dict(batch_size=2.5), "batch_size"), (dict(INTERACTIVE="yes"), "INTERACTIVE"), (dict(T=True), "T"),
     (dict(arch="lenet"), "arch"), (dict(norm="ln"), "norm"), (dict(hidden=[]), "hidden"),
     (dict(hidden=[8, 0]), "hidden entry"), (dict(lam=1.5), "lam"), (dict(taus=[1.0]), "taus entry"),
     (dict(dropout=1.0), "dropout"), (dict(optimizer="lbfgs"), "optimizer")],
)
def test_bad_parameters_raise_naming_them(override, name):
    with pytest.raises(ValueError, match=rf"^{name}=.*allowed values"):
        papers.resolve("basics", "01_lif_and_surrogates", "quick", {**BASE, **override})


def test_unknown_profile_and_choices():
    with pytest.raises(ValueError, match=r"profile='fast'.*\['quick', 'paper'\]"):
        papers.resolve("basics", "01_lif_and_surrogates", "fast", BASE)
    with pytest.raises(ValueError, match=r"arch='alexnet'"):
        papers.resolve("basics", "01_lif_and_surrogates", "quick", {**BASE, "arch": "alexnet"},
                       choices={"arch": ["mlp", "vgg11"]})
    with pytest.raises(ValueError, match="paper="):
        papers.load("no-such-paper")


def test_paper_profile_overlays_only_known_keys():
    quick = papers.resolve("basics", "01_lif_and_surrogates", "quick", BASE)
    paper = papers.resolve("basics", "01_lif_and_surrogates", "paper", BASE)
    assert quick.epochs == 2 and quick.profile == "quick"
    assert paper.epochs == papers.load("basics")["profiles"]["paper"]["01_lif_and_surrogates"]["epochs"]
    assert paper.as_dict()["profile"] == "paper"
