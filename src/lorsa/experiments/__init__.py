"""Experiments of the paper, one module per figure (:mod:`.synthetic`: Figure 2; :mod:`.generalization`: new tasks)."""
