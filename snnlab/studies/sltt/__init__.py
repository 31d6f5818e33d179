"""sltt: Meng et al., Towards Memory- and Time-Efficient Backpropagation for Training SNNs (ICCV 2023)."""
