"""Tables 6-8 (snnlab.studies.srigl.tables) against the appendix's symbolic entries and closed forms,
written out by hand here (Appendix B, Eq. 14, 21 with 18 n/k, 25; C_{n,k} of Eq. 23)."""

from __future__ import annotations

import pytest

from snnlab.studies.srigl import tables


def _closed(kind: str, n: int, k: int) -> float:
    base = (5 * n - 8 + 18 * n / k) / (n * (n + 2))
    if kind == "bernoulli":
        return base
    if kind == "fan_in":
        return base - 3 * (n - k) / (k * n * (n + 2))
    c = (n - 1 / k) / (n - 1 / n)
    return ((n * n + 7 * n - 8) * c + 18 * n / k - n * n - 2 * n) / (n * (n + 2))


@pytest.mark.parametrize("n, k", [(8, 2), (16, 1), (32, 5), (64, 64)])
def test_mask_column_matches_the_printed_entries(n, k):
    p = k / n
    c = (n - 1 / k) / (n - 1 / n)
    printed = {"bernoulli": [p, p * p, p * p, p * p],                       # Table 6
               "per_layer": [p, p * p * c, p * p * c, p * p * c],            # Table 7
               "fan_in": [p, p * p, p * (k - 1) / (n - 1), p * p]}           # Table 8 (rows in case order)
    for kind, col in printed.items():
        t = tables.derivation_table(kind, n, k)
        assert t["E[I I']"].tolist() == pytest.approx(col, rel=1e-12)
        assert t["terms"].tolist() == [n * n, n * n * (n - 1), n * n * (n - 1), n * n * (n - 1) ** 2]
        assert t["E[g²g'²]"].tolist() == [3, 1, 3, 1]
        assert t["E[ξ ξ']"].tolist() == [0.5, 0.5, 0.25, 0.25]
        assert t["E[u² u'²]"].tolist() == pytest.approx([3 / (n * (n + 2))] * 2 + [1 / (n * (n + 2))] * 2)
        assert tables.variance_from_table(t) == pytest.approx(_closed(kind, n, k), rel=1e-9, abs=1e-12)


def test_tables_named_and_bad_input_raises():
    assert tables.TABLES == {"bernoulli": "Table 6", "per_layer": "Table 7", "fan_in": "Table 8"}
    with pytest.raises(ValueError, match="kind"):
        tables.derivation_table("nope", 8, 2)
