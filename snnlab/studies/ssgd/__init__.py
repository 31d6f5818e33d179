"""ssgd: Perez-Nieves & Goodman, Sparse Spiking Gradient Descent (NeurIPS 2021)."""
