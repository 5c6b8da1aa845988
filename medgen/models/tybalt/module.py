"""Tybalt networks: encoder, reparameterisation, decoder, and the loss terms.

No training logic here (that is ``plan.TybaltPlan``): the module maps a batch to named
loss terms, like the modules of scvi-tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from medgen.errors import MedgenInputError

Activation = Literal["relu", "linear"]
Reconstruction = Literal["bce", "mse"]
ACTIVATIONS = ("relu", "linear")
RECONSTRUCTIONS = ("bce", "mse")


@dataclass
class LossTerms:
    """Per-batch means over samples of each term (sums over genes / latent nodes)."""

    reconstruction: torch.Tensor
    kl: torch.Tensor
    total: torch.Tensor


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MedgenInputError(
            f"config key 'models.tybalt.params.{name}' is {value!r}; "
            f"expected one of: {', '.join(choices)}"
        )


def _dense(n_in: int, n_out: int) -> nn.Linear:
    """Dense layer with Keras' defaults, as the reference: Glorot-uniform, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class _Head(nn.Sequential):
    """Dense -> (BatchNorm) -> (ReLU): one Gaussian parameter of q(z | x)."""

    def __init__(self, n_in: int, n_out: int, batch_norm: bool, activation: str) -> None:
        layers: list[nn.Module] = [_dense(n_in, n_out)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        if activation == "relu":
            layers.append(nn.ReLU())
        super().__init__(*layers)


def _hidden_stack(n_in: int, widths: list[int], batch_norm: bool) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(_dense(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        n_in = width
    return nn.Sequential(*layers), n_in


class TybaltVAE(nn.Module):
    """Variational autoencoder of Way & Greene (2018), optionally conditional.

    Parameters
    ----------
    n_genes
        Input features (genes), scaled to [0, 1].
    latent_dim
        Latent nodes.
    hidden_layers, hidden_dim
        Hidden Dense(hidden_dim) -> (BatchNorm) -> ReLU layers between the input and the
        Gaussian heads, mirrored in the decoder. The paper's "two-hidden-layer" variants
        (5000 -> 100 -> 100, 5000 -> 300 -> 100) are ``hidden_layers=1`` here, since the
        latent layer is not counted as hidden.
    mean_activation, logvar_activation
        'relu' (the reference) or 'linear' on the heads of q(z | x).
    batch_norm
        BatchNorm after each encoder dense layer (the reference).
    reconstruction
        'bce': binary cross-entropy summed over genes (the paper); 'mse': squared error
        summed over genes.
    n_conditions
        Categories of the conditioning label (0: plain VAE); their one-hot code is
        concatenated to the encoder input and to z.
    """

    def __init__(
        self,
        n_genes: int,
        latent_dim: int = 100,
        hidden_layers: int = 0,
        hidden_dim: int = 300,
        mean_activation: Activation = "relu",
        logvar_activation: Activation = "relu",
        batch_norm: bool = True,
        reconstruction: Reconstruction = "bce",
        n_conditions: int = 0,
    ) -> None:
        super().__init__()
        _check_choice("mean_activation", mean_activation, ACTIVATIONS)
        _check_choice("logvar_activation", logvar_activation, ACTIVATIONS)
        _check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
        if hidden_layers not in (0, 1, 2):
            raise MedgenInputError(
                f"config key 'models.tybalt.params.hidden_layers' is {hidden_layers!r}; "
                "expected 0, 1 or 2"
            )
        for name, value in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim)):
            if value < 1:
                raise MedgenInputError(
                    f"config key 'models.tybalt.params.{name}' is {value}; expected >= 1"
                )
        self.n_genes = n_genes
        self.latent_dim = latent_dim
        self.n_conditions = n_conditions
        self.reconstruction = reconstruction
        widths = [hidden_dim] * hidden_layers
        self.encoder, n_enc = _hidden_stack(n_genes + n_conditions, widths, batch_norm)
        self.mean_head = _Head(n_enc, latent_dim, batch_norm, mean_activation)
        self.logvar_head = _Head(n_enc, latent_dim, batch_norm, logvar_activation)
        # Decoder mirrors the encoder; the last layer is linear and the sigmoid is applied
        # in the loss (BCE with logits is exact where sigmoid + BCE saturates).
        self.decoder_hidden, n_dec = _hidden_stack(
            latent_dim + n_conditions, widths[::-1], batch_norm=False
        )
        self.decoder_out = _dense(n_dec, n_genes)

    # -- networks ---------------------------------------------------------------------------
    def _with_condition(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([x, c], dim=1) if self.n_conditions else x

    @classmethod
    def from_hparams(cls, n_genes: int, n_conditions: int, hparams: dict) -> TybaltVAE:
        """Build from a preset's hyperparameters (the plan and model.pt loading share this)."""
        return cls(
            n_genes=n_genes,
            latent_dim=hparams["latent_dim"],
            hidden_layers=hparams["hidden_layers"],
            hidden_dim=hparams["hidden_dim"],
            mean_activation=hparams["mean_activation"],
            logvar_activation=hparams["logvar_activation"],
            batch_norm=hparams["batch_norm"],
            reconstruction=hparams["reconstruction"],
            n_conditions=n_conditions,
        )

    def encode(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, c)."""
        h = self.encoder(self._with_condition(x, c))
        return self.mean_head(h), self.logvar_head(h)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder_out(self.decoder_hidden(self._with_condition(z, c)))

    def decode(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Expected expression in [0, 1] for codes z."""
        return torch.sigmoid(self.decode_logits(z, c))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the reconstruction from a posterior sample, and (mu, logvar)."""
        mu, logvar = self.encode(x, c)
        z = self.reparameterise(mu, logvar)
        return self.decode_logits(z, c), mu, logvar

    # -- loss -------------------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, c: torch.Tensor | None = None, kl_weight: float = 1.0
    ) -> LossTerms:
        """Negative ELBO terms, averaged over the batch.

        reconstruction = sum over genes of BCE(x, sigmoid(logits)) (or squared error)
        kl             = KL(q(z | x) || N(0, I)) summed over latent nodes
        total          = reconstruction + kl_weight * kl
        """
        logits, mu, logvar = self(x, c)
        n = x.shape[0]
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        else:
            rec = F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / n
        kl = -0.5 * torch.sum(1.0 + logvar - mu.square() - logvar.exp()) / n
        return LossTerms(reconstruction=rec, kl=kl, total=rec + kl_weight * kl)

    # -- interpretation -----------------------------------------------------------------------
    @torch.no_grad()
    def gene_weights(self) -> torch.Tensor:
        """Latent node x gene weights of the decoder.

        Without hidden layers this is the decoder's weight matrix (as Tybalt exported it).
        With hidden layers it is the product of the decoder's weight matrices, a linear
        summary that ignores the hidden ReLUs. Condition columns are left out.
        """
        weight = self.decoder_out.weight  # genes x last hidden
        for layer in reversed([m for m in self.decoder_hidden if isinstance(m, nn.Linear)]):
            weight = weight @ layer.weight
        return weight[:, : self.latent_dim].T.contiguous()


def load_for_inference(checkpoint, device: str = "cpu") -> TybaltVAE:
    """The trained VAE (eval mode) from a ``medgen.checkpoint.Checkpoint`` of this family."""
    module = TybaltVAE.from_hparams(len(checkpoint.data["genes"]),
                                    len(checkpoint.data["condition_categories"]),
                                    checkpoint.hparams)
    module.load_state_dict(checkpoint.state["vae"])
    return module.to(device).eval()
