"""lth: Kim et al., Exploring Lottery Ticket Hypothesis in Spiking Neural Networks (ECCV 2022), main text and supplement."""
