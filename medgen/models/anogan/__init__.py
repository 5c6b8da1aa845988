"""AnoGAN (Schlegl et al., IPMI 2017): a DCGAN on normal images, scored by latent mapping.

Presets are flat dicts of concrete values (the registry type-checks overrides against them).
The image size is not a hyperparameter: networks are built for the prepared data's size
(the paper used 64 x 64 patches; config anomaly.image_size).
"""

from medgen.family import FamilySpec, Stage

PRESETS = {
    "paper": {
        "latent_dim": 100,          # DCGAN's uniform/normal latent of 100
        "generator_channels": 64,   # ngf: 512 channels at 4 x 4 for 64 x 64 images
        "discriminator_channels": 64,
        "lr_generator": 0.0002,     # DCGAN's Adam(2e-4, beta1 0.5)
        "lr_discriminator": 0.0002,
        "beta1": 0.5,
        "batch_size": 64,
        "max_epochs": 20,           # not stated in the paper; DCGAN code trains ~25 epochs
        "real_label": 1.0,          # no label smoothing in the reference
        "leaky_slope": 0.2,
        "score_steps": 500,         # Gamma
        "score_lambda": 0.1,        # weight of the discrimination loss
        "score_lr": 0.1,            # Adam on z (unknown in the paper; common ports)
        "score_batch_size": 1,      # the paper maps one image at a time
        "score_early_stop_tol": 0.0,  # 0 = run all Gamma steps
    },
    "default": {
        "latent_dim": 64,
        "generator_channels": 32,
        "discriminator_channels": 32,
        "lr_generator": 0.0002,
        "lr_discriminator": 0.0001,  # D learns faster than G on small data: slow it down
        "beta1": 0.5,
        "batch_size": 64,
        "max_epochs": 30,
        "real_label": 0.9,          # one-sided label smoothing
        "leaky_slope": 0.2,
        "score_steps": 500,
        "score_lambda": 0.1,
        "score_lr": 0.1,
        "score_batch_size": 256,    # many images mapped at once, each with its own z
        "score_early_stop_tol": 0.001,  # stop an image once 25 steps improve it < 0.1 %
    },
}

FAMILY = FamilySpec(
    name="anogan",
    task="anomaly",
    presets=PRESETS,
    stages=(Stage("", "medgen.models.anogan.plan:DCGANPlan"),),
    load="medgen.models.anogan.module:load_for_inference",
    description="AnoGAN (Schlegl et al. 2017), DCGAN on normals plus latent mapping.",
    # score_steps 0 would score the random starting latents
    positive=("latent_dim", "generator_channels", "discriminator_channels", "batch_size",
              "lr_generator", "lr_discriminator", "score_steps", "score_lr",
              "score_batch_size"),
    limitations=(
        "Scoring maps a latent code per image by optimisation (score_steps Adam steps): orders "
        "of magnitude slower than an encoder, and a short mapping leaves residuals high.",
        "Images unlike the training normals in scanner, contrast or resolution score as "
        "anomalous whether or not they hold a lesion.",
    ),
)
