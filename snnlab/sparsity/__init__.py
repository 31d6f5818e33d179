"""Sparsity methods: masks and one-shot rules (:mod:`.masks`), dynamic sparse training
(:mod:`.dst`), condensed constant fan-in layers (:mod:`.condensed`), synaptic-operation counts
(:mod:`.opcount`)."""
