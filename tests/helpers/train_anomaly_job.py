"""An anomaly-model training job: `python train_anomaly_job.py FAMILY TRAIN_NPZ OUT DEVICES`.

A script file because Lightning's DDP launcher starts the other ranks by running it again.
"""

import sys

from medgen.registry import resolve_hparams
from medgen.train import train_model

family, data, out, devices = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tiny = {
    "anogan": {"latent_dim": 8, "generator_channels": 8, "discriminator_channels": 8,
               "batch_size": 16, "score_steps": 10, "score_batch_size": 32, "max_epochs": 2},
    "fanogan": {"latent_dim": 8, "channels_base": 8, "batch_size": 16, "n_critic": 2,
                "score_batch_size": 32, "max_epochs": 2, "encoder_epochs": 1},
}[family]
training = {"accelerator": "cpu", "devices": devices, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}
train_model(family, data, resolve_hparams(family, "default", tiny), training, 0, out)
