"""basics: the tutorial notebook (LIF presets, surrogates, a small SNN end to end); not a paper."""
