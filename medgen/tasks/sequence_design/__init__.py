"""Sequence design (Killoran et al. 2017, "Generating and designing DNA with deep generative
models"): DNA generation and its baselines (i.i.d. bases, k-th order Markov chains) and the
generation metrics (k-mer spectra, GC, dinucleotides, homopolymers, JASPAR motif hit rates,
nearest-neighbour distance to the training set). Not yet a registered task: the GAN and
predictor families, design methods, the TaskSpec and the rule file come next (issue 30)."""
