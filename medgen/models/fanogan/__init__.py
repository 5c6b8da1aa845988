"""f-AnoGAN (Schlegl et al., Medical Image Analysis 2019): WGAN-GP + izi_f encoder.

Stage 1 trains a WGAN-GP with residual blocks on normal images; stage 2 trains an encoder
E with G and the critic frozen (izi_f loss). Score A(x) = A_R + kappa * A_D from one
forward pass. The image size comes from the prepared data (paper: 64 x 64).
"""

from typing import Any

from medgen.errors import MedgenInputError
from medgen.family import FamilySpec, Stage

# medgen.nn.dcgan.UPSAMPLING, spelt out: family modules stay torch-free so that Snakemake
# parses and config validation are quick (a test keeps the two equal)
UPSAMPLING = ("transposed", "nearest")

PRESETS = {
    "paper": {
        "latent_dim": 128,
        "channels_base": 64,        # residual-block width ("dim" in the WGAN-GP code)
        "residual_blocks": True,
        "upsampling": "nearest",    # residual up-blocks upsample by nearest neighbour
        "batch_size": 64,
        "n_critic": 5,              # critic steps per generator step
        "gp_weight": 10.0,          # gradient penalty lambda
        "lr": 0.0001,               # Adam(1e-4, betas (0, 0.9))
        "beta1": 0.0,
        "beta2": 0.9,
        "max_epochs": 50,           # the paper counts iterations (unknown in epochs)
        "encoder_lr": 0.00005,      # RMSProp 5e-5
        "encoder_optimizer": "rmsprop",
        "encoder_epochs": 50,
        "kappa": 1.0,               # weight of the feature term in training and scoring
        "score_batch_size": 256,
    },
    "default": {
        "latent_dim": 128,
        "channels_base": 32,
        "residual_blocks": False,   # DCGAN-style strided convs: ~30x cheaper on CPU
        "upsampling": "transposed", # DCGAN's; 'nearest': resize-convolution, no dither
        "batch_size": 64,
        "n_critic": 5,
        "gp_weight": 10.0,
        "lr": 0.0002,               # 2x the paper: fewer epochs on small data sets
        "beta1": 0.0,
        "beta2": 0.9,
        "max_epochs": 30,
        "encoder_lr": 0.001,        # Adam: converges in a few epochs instead of RMSProp's tens
        "encoder_optimizer": "adam",
        "encoder_epochs": 15,
        "kappa": 1.0,
        "score_batch_size": 256,
    },
}



def check_hparams(hparams: dict[str, Any], key: str = "models.fanogan.params") -> None:
    """Refuse an ``upsampling`` the generator cannot build, before any job runs.

    Raises
    ------
    MedgenInputError
        ``upsampling`` is not one of ``UPSAMPLING``, or is 'transposed' with
        ``residual_blocks`` (the residual generator always upsamples by nearest neighbour).
    """
    mode = hparams["upsampling"]
    if mode not in UPSAMPLING:
        raise MedgenInputError(
            f"config key '{key}.upsampling' is {mode!r}; expected one of {list(UPSAMPLING)}")
    if hparams["residual_blocks"] and mode != "nearest":
        raise MedgenInputError(
            f"config key '{key}.upsampling' is {mode!r}, but residual_blocks: true builds the "
            "paper's residual generator, which upsamples by nearest neighbour only: expected "
            "'nearest', or residual_blocks: false for the DCGAN generator")


FAMILY = FamilySpec(
    name="fanogan",
    task="anomaly",
    presets=PRESETS,
    stages=(
        Stage("gan", "medgen.models.fanogan.plan:WGANGPPlan"),
        # E is trained with G and the critic frozen; its own seed (+1) so that its random
        # draws do not depend on how many the GAN stage made
        Stage("encoder", "medgen.models.fanogan.plan:EncoderPlan", epochs_key="encoder_epochs",
              seed_offset=1, frozen_modules=True),
    ),
    load="medgen.models.fanogan.module:load_for_inference",
    description="f-AnoGAN (Schlegl et al. 2019), WGAN-GP plus izi_f encoder.",
    check=check_hparams,
    positive=("latent_dim", "channels_base", "batch_size", "n_critic", "lr", "encoder_lr",
              "score_batch_size"),
    limitations=(
        "Trained on normals only: images unlike them in scanner, contrast or resolution score "
        "as anomalous whether or not they hold a lesion.",
        "Where the generator is smooth its residual follows image intensity: compare it with "
        "the intensity itself (the trivial baselines) before trusting a pixel map.",
    ),
)
