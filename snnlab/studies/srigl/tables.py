r"""Tables 6-8 of Appendix B (SRigL, Lasby et al. 2024), computed by the code that implements them.

Each table lists the four cases of the double sum E‖z‖⁴ = c² Σ_{i,j,i',j'} E[g_i² g_{i'}²]
E[I_ij I_{i'j'}] E[ξ_j ξ_{j'}] E[u_j² u_{j'}²] (Eq. 19): the number of terms and the four
expectations, for one mask type (Table 6: Bernoulli, Table 7: constant per layer, Table 8:
constant fan-in). The mask column is :func:`snnlab.studies.srigl.theory.pair_moments`, the code
the variance closed forms and the simulations of notebook 01 use; the other columns are the
appendix's (Gaussian g: 3 or 1; gates ξ ~ Ber(r): r or r²; u uniform on the sphere:
3/(n(n+2)) or 1/(n(n+2))). Summing count x product x c² (c = 1/(k r)) and subtracting
E‖z‖² = 1 gives the variance: :func:`derivation_table` adds that column so the table can be
checked against Eq. (14), (21), (25).
"""

from __future__ import annotations

import pandas as pd

from . import theory

__all__ = ["TABLES", "derivation_table", "variance_from_table"]

#: the appendix's table number of each mask type
TABLES = {"bernoulli": "Table 6", "per_layer": "Table 7", "fan_in": "Table 8"}


def derivation_table(kind: str, n: int, k: float, rate: float = 0.5) -> pd.DataFrame:
    """The case table of ``kind`` (Tables 6-8) at fan-in ``k`` of ``n`` inputs and gate rate ``rate``
    (the paper's 1/2): columns ``case``, ``terms``, ``E[g²g'²]``, ``E[I I']``, ``E[ξ ξ']``,
    ``E[u² u'²]`` and ``contribution`` = c² · terms · product (c = 1/(k·rate)); the contributions sum
    to E‖z‖⁴. Raises ValueError for a bad kind, n, k or rate (theory's validators)."""
    m = theory.pair_moments(kind, n, k)
    u4, u22 = 3 / (n * (n + 2)), 1 / (n * (n + 2))
    c = 1 / (k * rate)
    rows = [("i = i', j = j'", n * n, 3, m.p, rate, u4),
            ("i != i', j = j'", n * n * (n - 1), 1, m.same_col, rate, u4),
            ("i = i', j != j'", n * n * (n - 1), 3, m.same_row, rate * rate, u22),
            ("i != i', j != j'", n * n * (n - 1) ** 2, 1, m.other, rate * rate, u22)]
    df = pd.DataFrame(rows, columns=["case", "terms", "E[g²g'²]", "E[I I']", "E[ξ ξ']", "E[u² u'²]"])
    df["contribution"] = c * c * df["terms"] * df["E[g²g'²]"] * df["E[I I']"] * df["E[ξ ξ']"] * df["E[u² u'²]"]
    return df


def variance_from_table(table: pd.DataFrame) -> float:
    """Var ‖z‖² = Σ contributions - (E‖z‖²)² with E‖z‖² = 1 (Eq. 13, 20, 24)."""
    return float(table["contribution"].sum() - 1.0)
