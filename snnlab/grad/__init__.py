"""How gradients are computed: BPTT (:mod:`.bptt`) and online SLTT (:mod:`.sltt`)."""
