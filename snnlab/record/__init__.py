"""How a study reads its parameters (:mod:`.params`), records figures, metrics and claims
(:mod:`.results`), draws (:mod:`.plotting`) and measures time and memory (:mod:`.bench`)."""
