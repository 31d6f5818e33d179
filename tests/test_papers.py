"""papers: every paper.yaml loads; parameter validation names the bad parameter before work."""

import pytest

from snnlab.record import params

BASE = dict(seed=0, dataset="digits", T=4, epochs=2, lr=1e-3, batch_size=32, INTERACTIVE=False)


def test_every_paper_yaml_loads():
    ids = params.list_papers()
    assert "basics" in ids
    for pid in ids:
        meta = params.load(pid)
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
        params.validate({**BASE, **override})
    if set(override) <= set(BASE) | {"arch"}:  # parameters the basics notebook has: resolve checks them too
        with pytest.raises(ValueError, match=rf"^{name}=.*allowed values"):
            params.resolve("basics", "01_lif_and_surrogates", "quick", {**BASE, **override})


@pytest.mark.parametrize("paper, notebook, extra, word", [
    ("no-such-paper", "01_lif_and_surrogates", {}, "paper='no-such-paper'"),
    ("basics", "99_missing", {}, "notebook='99_missing'.*01_lif_and_surrogates"),
    ("basics", "01_lif_and_surrogates", {"epoch": 3}, "parameter name='epoch'.*epochs"),
])
def test_resolve_refuses_unknown_paper_notebook_and_misspelled_names(paper, notebook, extra, word):
    with pytest.raises(ValueError, match=word):
        params.resolve(paper, notebook, "quick", {**BASE, **extra})


def test_unknown_profile_and_choices():
    with pytest.raises(ValueError, match=r"profile='fast'.*\['quick', 'paper'\]"):
        params.resolve("basics", "01_lif_and_surrogates", "fast", BASE)
    with pytest.raises(ValueError, match=r"arch='alexnet'"):
        params.resolve("basics", "01_lif_and_surrogates", "quick", {**BASE, "arch": "alexnet"},
                       choices={"arch": ["mlp", "vgg11"]})
    with pytest.raises(ValueError, match="paper="):
        params.load("no-such-paper")


def test_paper_profile_overlays_only_known_keys():
    quick = params.resolve("basics", "01_lif_and_surrogates", "quick", BASE)
    paper = params.resolve("basics", "01_lif_and_surrogates", "paper", BASE)
    assert quick.epochs == 2 and quick.profile == "quick"
    assert paper.epochs == params.load("basics")["profiles"]["paper"]["01_lif_and_surrogates"]["epochs"]
    assert paper.as_dict()["profile"] == "paper"
