"""One sub-package per paper: its sweeps, claims (``claims.py``) and plots. Only here (and in
``papers/`` and ``notebooks/``) do paper ids appear."""
