"""DNA WGAN-GP (Killoran, Lee, Delong & Frey 2017, "Generating and designing DNA with deep
generative models"): a Wasserstein GAN with gradient penalty whose generator writes base
probabilities per position; trained on genome windows (the paper: 50-bp lines of human
chromosome 1). Task 'sequence_design'; the window length comes from the prepared data.

Presets are flat dicts of plain values:
- 'paper': the paper's code: latent 100, 100 channels, 5 residual blocks, Adam 1e-4 with
  betas (0.5, 0.9), 5 critic steps per generator step, lambda 10, batches of 64.
- 'default': 32 channels and 2 residual blocks, sized to train on 2 CPU cores in minutes on
  about 20,000 50-bp windows.
"""

from __future__ import annotations

from typing import Any

from medgen.family import FamilySpec, Stage

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "latent_dim": 100,
        "channels": 100,       # width of every residual block ("dim" in the paper's code)
        "n_blocks": 5,         # residual blocks in the generator and in the critic
        "batch_size": 64,
        "n_critic": 5,         # critic steps per generator step
        "gp_weight": 10.0,     # gradient penalty lambda
        "lr": 0.0001,          # Adam(1e-4, betas (0.5, 0.9)) for both networks
        "beta1": 0.5,
        "beta2": 0.9,
        # the paper trained 100,000 iterations (read as generator iterations, each after
        # 5 critic batches of 64, as in the WGAN-GP code its code builds on): 32M windows;
        # chr1's ~3.7M training windows of 50 bp (80% of ~4.6M without N): about 9 epochs
        "max_epochs": 9,
    },
    "default": {
        "latent_dim": 100,
        "channels": 32,
        "n_blocks": 2,
        "batch_size": 64,
        "n_critic": 5,
        "gp_weight": 10.0,
        "lr": 0.0001,
        "beta1": 0.5,
        "beta2": 0.9,
        # ~1,250 generator steps on 20,000 windows: 53 ms a batch of 64 on one CPU thread
        # (L = 50), about 4.5 minutes (the paper's preset: about 1 s a batch)
        "max_epochs": 20,
    },
}

FAMILY = FamilySpec(
    name="dna_gan",
    task="sequence_design",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.dna_gan.plan:DNAGANPlan"),),
    load="medgen.models.dna_gan.module:load_for_inference",
    description="DNA WGAN-GP (Killoran et al. 2017): generates sequences like its "
                "training windows.",
    resources={"mem_mb": 8000, "runtime": 240},
    positive=("latent_dim", "channels", "n_blocks", "batch_size", "n_critic", "lr"),
    limitations=(
        "Generates windows of the training length only, like the training windows in "
        "their k-mer and motif statistics at best: compare it with the Markov-chain "
        "baselines before trusting it.",
        "The generator writes base probabilities; sequences are their argmax per position.",
    ),
)

__all__ = ["FAMILY", "PRESETS"]
