"""User-facing anomaly models: train (via medgen.train.fit), save, load and score.

``train_anomaly_model`` trains a family on the normal training units of a prepared split and
writes ``model.pt`` (state dicts, hyperparameters, image geometry; tensors and plain values
only, read back with ``weights_only=True``). ``load_scorer`` returns an object whose
``score(x)`` maps images in [0, 1] to per-image scores and reconstructions in [0, 1]; the
PCA baseline (``fit_pca``) shares that interface so every method runs in one harness.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from medgen import atomic
from medgen.data.imaging.prepare import load_split
from medgen.errors import MedgenInputError
from medgen.models.anogan.networks import n_doublings
from medgen.train import EpochSeededSampler, fit, seed_all

MODEL_FILE = "model.pt"
FAMILIES = ("anogan", "fanogan", "convae")


@dataclass
class Scores:
    """Per-image outputs of a scorer (numpy): score, its terms, reconstruction in [0, 1]."""

    score: np.ndarray
    terms: dict[str, np.ndarray]
    reconstruction: np.ndarray
    steps: np.ndarray | None = None


def _train_loader(images: np.ndarray, batch_size: int, seed: int) -> DataLoader:
    dataset = TensorDataset(torch.as_tensor(images, dtype=torch.float32))
    return DataLoader(dataset, batch_size=batch_size,
                      sampler=EpochSeededSampler(len(dataset), seed),
                      drop_last=len(dataset) > batch_size)


def _geometry(images: np.ndarray, data_path: Path) -> tuple[int, int]:
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise MedgenInputError(f"{data_path}: expected images (N, C, S, S), got {images.shape}")
    try:
        n_doublings(images.shape[-1])
    except ValueError:
        raise MedgenInputError(
            f"{data_path}: image side {images.shape[-1]} is not a power of two >= 8; "
            "set imaging.image_size accordingly"
        ) from None
    return images.shape[1], images.shape[-1]


def train_anomaly_model(
    family: str,
    data_path: str | os.PathLike,
    hparams: dict[str, Any],
    training: dict[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
) -> Path:
    """Train ``family`` on the images of ``data_path`` (a prepared train.npz); return model.pt.

    Checkpoints every epoch under ``out_dir`` (f-AnoGAN: ``gan/`` then ``encoder/``); a rerun
    resumes from ``last.ckpt``. ``training['max_epochs']`` (if set) overrides the preset's
    epochs (for f-AnoGAN both stages).
    """
    if family not in FAMILIES:
        raise MedgenInputError(f"unknown anomaly family '{family}'; valid: {', '.join(FAMILIES)}")
    data_path, out_dir = Path(data_path), Path(out_dir)
    images = load_split(data_path)["images"]
    channels, size = _geometry(images, data_path)
    loader = _train_loader(images, hparams["batch_size"], seed)
    epochs = training.get("max_epochs") or hparams["max_epochs"]
    seed_all(seed)  # initial weights depend on the seed only, not on what ran before
    if family == "anogan":
        from medgen.models.anogan.plan import DCGANPlan

        plan = DCGANPlan(hparams, channels, size)
        fit(plan, loader, None, out_dir, training, epochs, seed)
        state = {"generator": plan.generator.state_dict(),
                 "discriminator": plan.discriminator.state_dict()}
    elif family == "fanogan":
        from medgen.models.fanogan.plan import EncoderPlan, WGANGPPlan

        gan = WGANGPPlan(hparams, channels, size)
        fit(gan, loader, None, out_dir / "gan", training, epochs, seed)
        gan_state = {"generator": gan.generator.state_dict(), "critic": gan.critic.state_dict()}
        seed_all(seed + 1)
        enc = EncoderPlan(hparams, channels, size, gan_state)
        enc_epochs = training.get("max_epochs") or hparams["encoder_epochs"]
        with warnings.catch_warnings():
            # G and the critic stay frozen in eval mode on purpose (izi_f trains E only)
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            fit(enc, loader, None, out_dir / "encoder", training, enc_epochs, seed + 1)
        state = {**gan_state, "encoder": enc.encoder.state_dict()}
    else:
        from medgen.models.convae.plan import ConvAEPlan

        plan = ConvAEPlan(hparams, channels, size)
        fit(plan, loader, None, out_dir, training, epochs, seed)
        state = {"autoencoder": plan.autoencoder.state_dict()}
    path = out_dir / MODEL_FILE
    with atomic.atomic_path(path) as tmp:
        torch.save({"family": family, "hparams": dict(hparams), "channels": channels,
                    "image_size": size, "seed": seed, "state": state}, tmp)
    return path


class GANScorer:
    """Scores images with a trained AnoGAN (latent mapping) or f-AnoGAN (encoder)."""

    def __init__(self, saved: dict[str, Any], device: str = "cpu") -> None:
        self.family = saved["family"]
        self.hp = saved["hparams"]
        self.channels, self.image_size = saved["channels"], saved["image_size"]
        self.device = torch.device(device)
        hp, c, s = self.hp, self.channels, self.image_size
        if self.family == "anogan":
            from medgen.models.anogan.networks import Discriminator, Generator

            self.generator = Generator(hp["latent_dim"], c, s, hp["generator_channels"])
            self.discriminator = Discriminator(c, s, hp["discriminator_channels"],
                                               hp["leaky_slope"])
            self.discriminator.load_state_dict(saved["state"]["discriminator"])
            self.modules = (self.generator, self.discriminator)
        else:
            from medgen.models.fanogan.networks import build_networks

            self.generator, self.critic, self.encoder = build_networks(hp, c, s)
            self.critic.load_state_dict(saved["state"]["critic"])
            self.encoder.load_state_dict(saved["state"]["encoder"])
            self.modules = (self.generator, self.critic, self.encoder)
        self.generator.load_state_dict(saved["state"]["generator"])
        for m in self.modules:
            m.to(self.device).eval()
        # scoring settings that callers (benchmark, per-image loop) may change
        self.batch_size = hp["score_batch_size"]
        self.steps = hp.get("score_steps", 0)
        self.tol = hp.get("score_early_stop_tol", 0.0)
        self.progress = True  # a bar while AnoGAN maps latents (minutes to hours)

    def score(self, images: np.ndarray | torch.Tensor) -> Scores:
        x_all = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        parts = []
        n_batches = -(-len(x_all) // self.batch_size)
        # progress in mapping steps: Gamma per batch; a batch that stops early jumps ahead
        bar = tqdm(total=n_batches * self.steps, unit="step", mininterval=5,
                   desc=f"AnoGAN latent mapping ({len(x_all)} images, {self.batch_size} at once)",
                   disable=self.family != "anogan" or not self.progress)
        with bar:
            for start in range(0, len(x_all), self.batch_size):
                x = x_all[start:start + self.batch_size].to(self.device) * 2 - 1
                if self.family == "anogan":
                    from medgen.models.anogan.scoring import map_latents

                    fit_ = map_latents(self.generator, self.discriminator, x, self.steps,
                                       self.hp["score_lambda"], self.hp["score_lr"], self.tol,
                                       seed=start, on_step=lambda _: bar.update())
                    bar.update(self.steps - int(fit_.steps.max()))
                    parts.append((fit_.score, fit_.residual, fit_.discrimination,
                                  fit_.reconstruction, fit_.steps))
                else:
                    from medgen.models.fanogan.scoring import encode_scores

                    fit_ = encode_scores(self.encoder, self.generator, self.critic, x,
                                         self.hp["kappa"])
                    parts.append((fit_.score, fit_.residual, fit_.discrimination,
                                  fit_.reconstruction, None))
        cat = lambda i: torch.cat([p[i] for p in parts]).cpu().numpy()  # noqa: E731
        return Scores(
            score=cat(0), terms={"residual": cat(1), "discrimination": cat(2)},
            reconstruction=(cat(3) + 1) / 2,
            steps=cat(4) if parts and parts[0][4] is not None else None,
        )


class ConvAEScorer:
    def __init__(self, saved: dict[str, Any], device: str = "cpu") -> None:
        from medgen.models.convae.networks import ConvAutoencoder

        hp = saved["hparams"]
        self.model = ConvAutoencoder(saved["channels"], saved["image_size"],
                                     hp["channels_base"], hp["bottleneck"])
        self.model.load_state_dict(saved["state"]["autoencoder"])
        self.model.to(device).eval()
        self.device, self.image_size, self.batch_size = device, saved["image_size"], 256

    @torch.no_grad()
    def score(self, images) -> Scores:
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        recon = torch.cat([self.model(b.to(self.device)).cpu() for b in x.split(self.batch_size)])
        err = ((x - recon) ** 2).flatten(1).mean(1).numpy()
        return Scores(err, {"residual": err}, recon.numpy())


class PCAScorer:
    """PCA reconstruction error: project onto the top-k components of the normal images."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, shape: tuple[int, ...]) -> None:
        self.mean, self.components, self.shape = mean, components, shape
        self.image_size = shape[-1]

    def score(self, images) -> Scores:
        x = np.asarray(images, dtype=np.float64).reshape(len(images), -1) - self.mean
        recon = (x @ self.components.T) @ self.components + self.mean
        err = ((x + self.mean - recon) ** 2).mean(1)
        return Scores(err, {"residual": err}, recon.reshape(-1, *self.shape).astype(np.float32))


def fit_pca(data_path: str | os.PathLike, k: int, out_path: str | os.PathLike) -> Path:
    """Fit the PCA baseline on the training images; save mean and components (.npz)."""
    from sklearn.decomposition import PCA

    images = load_split(data_path)["images"]
    pca = PCA(n_components=min(k, len(images) - 1), random_state=0)
    pca.fit(images.reshape(len(images), -1))
    out_path = Path(out_path)
    with atomic.atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=pca.mean_, components=pca.components_,
                 shape=np.array(images.shape[1:]))
    return out_path


def load_scorer(path: str | os.PathLike, device: str = "cpu"):
    """A scorer from a saved model.pt (anogan/fanogan/convae) or a PCA .npz."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as f:
            return PCAScorer(f["mean"], f["components"], tuple(int(s) for s in f["shape"]))
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("family") == "convae":
        return ConvAEScorer(saved, device)
    if saved.get("family") in ("anogan", "fanogan"):
        return GANScorer(saved, device)
    raise MedgenInputError(f"{path}: not a medgen anomaly model (family {saved.get('family')!r})")
