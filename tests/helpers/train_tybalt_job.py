"""A training job as a cluster runs it: `python train_tybalt_job.py H5AD OUT EPOCHS DEVICES`.

A script file (not `python -c`) because Lightning's DDP launcher starts the other ranks by
running the same script again.
"""

import sys

from medgen.registry import resolve_hparams
from medgen.train import train_model

h5ad, out, epochs, devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hparams = resolve_hparams("tybalt", "default", {"latent_dim": 8, "hidden_dim": 32,
                                                 "batch_size": 10})
training = {"accelerator": "cpu", "devices": devices, "num_nodes": 1, "max_epochs": epochs,
            "num_threads": 1, "progress_bar": False}
train_model("tybalt", h5ad, hparams, training, 0, out)
