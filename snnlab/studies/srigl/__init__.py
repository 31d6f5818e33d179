"""srigl: Lasby et al., Dynamic Sparse Training with Structured Sparsity (ICLR 2024), read in the SNN setting."""
