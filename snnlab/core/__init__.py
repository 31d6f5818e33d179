"""SNN building blocks on spikingjelly: surrogate spike functions (:mod:`.surrogate`), LIF presets
(:mod:`.neurons`), spiking networks and their ANN twins (:mod:`.models`), input encodings
(:mod:`.encoding`)."""
