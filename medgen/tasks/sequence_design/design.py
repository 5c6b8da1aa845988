"""Sequence design: gradient methods of Killoran, Lee, Delong & Frey 2017 ("Generating and
designing DNA with deep generative models") and the baselines they are compared with.

Methods (each returns a :class:`Design`: sequences, their soft form where there is one, and
the score trajectory):

- **activation maximisation** (``activation_maximisation``, the paper's "deep dream"): the
  predictor's input is free per-position logits through a softmax over the bases; Adam
  (step ``lr``, the paper's 0.1) moves the logits to optimise the objective, with Gaussian
  noise of sd ``noise`` added to every gradient (the paper's "small gradient noise").
- **joint** (``joint_design``): the same optimiser on a batch of latent codes z of a trained
  generator (dna_gan): the predictor's score back-propagated through the generator, so
  designs stay on what the GAN learnt.
- **in-silico evolution** (``in_silico_evolution``, the baseline gReLU and Ledidi use): greedy
  mutation against the same objective: every round each sequence's ``mutants`` random
  single-base substitutions are scored and the best kept when it improves.
- baselines without optimisation: ``random_sequences`` (i.i.d. bases at the training
  composition) and ``best_measured`` (the training split's best measured sequences).

Objectives (:class:`Objective`): a trained predictor's output (``predictor_objective``) or
an explicit motif predictor (``pwm_objective``: the best log-odds match of a JASPAR PSSM over
positions and both strands, the paper's "explicit" predictor), each with a target: 'max',
'min' or a number (squared distance to it). Several objectives add up (weights). The
gradient methods optimise the soft sequence; their result is also reported after argmax
(one-hot), as the paper did, and every score below is of the one-hot sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from medgen.data.sequence import ALPHABET, decode, one_hot
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

TARGETS = ("max", "min")
LOGIT_INIT_SD = 0.1  # small random logits: every start near uniform, no two alike


@dataclass
class Objective:
    """One design objective.

    Attributes
    ----------
    name
        What it scores ('predictor', 'motif MA0058.4 MAX').
    score
        Differentiable (N, L, 4) float tensor (soft or one-hot) -> (N,) scores (the
        predictor's measurement units, or bits for a PSSM).
    target
        'max', 'min' or a number (the score to reach).
    weight
        Its weight in the summed loss.
    """

    name: str
    score: Callable[[torch.Tensor], torch.Tensor]
    target: str | float = "max"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.target, str) and self.target not in TARGETS:
            raise MedgenInputError(f"design objective target is {self.target!r}; expected "
                                   "'max', 'min' or a number")

    def loss(self, scores: torch.Tensor) -> torch.Tensor:
        """Per-sequence loss (N,) to minimise: -score, score or (score - target)^2."""
        if self.target == "max":
            return -scores
        if self.target == "min":
            return scores
        return (scores - float(self.target)) ** 2


def predictor_objective(predictor, target: str | float = "max", weight: float = 1.0
                        ) -> Objective:
    """The objective of a trained ``sequence_predictor`` (``SequencePredictor``): its
    differentiable prediction in the measurement's units."""
    return Objective("predictor", predictor.predict_tensor, target, weight)


def pwm_objective(pssm: np.ndarray, name: str = "motif", target: str | float = "max",
                  weight: float = 1.0) -> Objective:
    """The explicit motif predictor of Killoran et al.: the best PSSM match over positions
    and both strands of a (soft) sequence, sum over the motif's width of
    ``sum_b p(b) * log-odds(b)`` (bits). The max lets the gradient reach the best-matching
    window only, as in the paper.

    Parameters
    ----------
    pssm
        float (4, w) log-odds of A, C, G, T per position
        (``generation_metrics.MotifScorer.pssm``).

    Raises
    ------
    MedgenInputError
        A matrix that is not (4, w) with finite values.
    """
    pssm = np.asarray(pssm, dtype=np.float32)
    if pssm.ndim != 2 or pssm.shape[0] != 4 or not np.isfinite(pssm).all():
        raise MedgenInputError(f"{name}: a PSSM must be a finite (4, width) matrix; got "
                               f"shape {pssm.shape}")
    forward = torch.from_numpy(pssm)
    # the reverse strand: complement (A<->T, C<->G: the channel order reversed), reversed
    weights = torch.stack([forward, forward.flip(0).flip(1)])  # (2 strands, 4, w)

    def score(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < pssm.shape[1]:
            raise MedgenInputError(f"{name}: motif of {pssm.shape[1]} bases is longer than "
                                   f"the sequences ({x.shape[1]})")
        matches = torch.nn.functional.conv1d(x.transpose(1, 2), weights.to(x))  # (N, 2, P)
        return matches.flatten(1).amax(dim=1)

    return Objective(name, score, target, weight)


def total_loss(objectives: Sequence[Objective], x: torch.Tensor) -> torch.Tensor:
    """Weighted sum of the objectives' losses, per sequence (N,)."""
    return sum(o.weight * o.loss(o.score(x)) for o in objectives)


@dataclass
class Design:
    """The result of one design method.

    Attributes
    ----------
    sequences
        The designed sequences (strings of ACGT), n of them.
    soft
        float32 (n, L, 4) base probabilities before argmax (gradient methods), else None.
    trajectory
        One row per recorded step: ``step``, and per objective ``<name>`` the mean score of
        the one-hot (argmax) sequences at that step and ``<name>_best`` the best one.
    initial
        The sequences the method started from (argmax of the initial logits or of the
        generator at the initial z; evolution's start), one per design; None for baselines.
    """

    sequences: list[str]
    soft: np.ndarray | None = None
    trajectory: pd.DataFrame = field(default_factory=pd.DataFrame)
    initial: list[str] | None = None


def _check_objectives(objectives: Sequence[Objective]) -> None:
    if not objectives:
        raise MedgenInputError("design needs at least one objective")


def _record(objectives: Sequence[Objective], onehot: torch.Tensor, step: int) -> dict:
    row: dict[str, float] = {"step": step}
    with torch.no_grad():
        for o in objectives:
            s = o.score(onehot)
            best = s.max() if o.target != "min" else s.min()
            row[o.name], row[f"{o.name}_best"] = float(s.mean()), float(best)
    return row


def _argmax_onehot(probabilities: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(probabilities.argmax(dim=2), 4).to(probabilities)


def _optimise(parameter: torch.Tensor, to_sequence: Callable[[torch.Tensor], torch.Tensor],
              objectives: Sequence[Objective], steps: int, lr: float, noise: float,
              seed: int, record_every: int, what: str) -> Design:
    """Adam on ``parameter`` (logits or latent codes) for ``steps`` steps; the shared loop
    of activation maximisation and joint design."""
    _check_objectives(objectives)
    if steps < 1 or lr <= 0 or noise < 0:
        raise MedgenInputError(f"{what}: steps {steps}, lr {lr}, noise {noise}; expected "
                               "steps >= 1, lr > 0, noise >= 0")
    noise_rng = torch.Generator().manual_seed(seed + 1)
    optimiser = torch.optim.Adam([parameter], lr=lr)
    rows, initial = [], None
    for step in tqdm(range(steps + 1), desc=what, disable=None):  # silent in logs
        probabilities = to_sequence(parameter)
        if initial is None:
            initial = decode(probabilities.detach().cpu().numpy())
        if step % record_every == 0 or step == steps:
            rows.append(_record(objectives, _argmax_onehot(probabilities.detach()), step))
        if step == steps:
            break
        optimiser.zero_grad()
        total_loss(objectives, probabilities).sum().backward()
        if noise:
            parameter.grad += noise * torch.randn(parameter.shape, generator=noise_rng)
        optimiser.step()
    soft = probabilities.detach().cpu().numpy().astype(np.float32)
    return Design(decode(soft), soft, pd.DataFrame(rows), initial)


def activation_maximisation(objectives: Sequence[Objective], n: int, length: int,
                            steps: int = 2000, lr: float = 0.1, noise: float = 0.01,
                            seed: int = 0, record_every: int = 20) -> Design:
    """Design ``n`` sequences of ``length`` bases by optimising free per-position logits
    (Killoran et al. 2017, "deep dream": softmax over the bases, Adam step 0.1, gradient
    noise). Logits start as N(0, 0.1^2) draws seeded by ``seed``.

    Returns a :class:`Design` (argmax sequences, their soft form, the trajectory every
    ``record_every`` steps). Raises MedgenInputError for no objective, n < 1, steps < 1,
    lr <= 0 or noise < 0.
    """
    if n < 1 or length < 1:
        raise MedgenInputError(f"activation maximisation: n {n}, length {length}; expected "
                               ">= 1 each")
    generator = torch.Generator().manual_seed(seed)
    logits = (LOGIT_INIT_SD * torch.randn(n, length, 4, generator=generator)).requires_grad_()
    return _optimise(logits, lambda p: torch.softmax(p, dim=2), objectives, steps, lr, noise,
                     seed, record_every, "activation maximisation")


def joint_design(generator, objectives: Sequence[Objective], n: int, steps: int = 2000,
                 lr: float = 0.1, noise: float = 0.01, seed: int = 0,
                 record_every: int = 20) -> Design:
    """Design ``n`` sequences by optimising latent codes z (start N(0, I), seeded) of a
    trained generator (``SequenceGenerator`` of dna_gan): the objective back-propagated
    through the generator (Killoran et al. 2017, joint method), Adam with gradient noise.

    Raises MedgenInputError as :func:`activation_maximisation`.
    """
    if n < 1:
        raise MedgenInputError(f"joint design: n is {n}; expected >= 1")
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    z = z.to(generator.device).requires_grad_()
    return _optimise(z, generator.generator, objectives, steps, lr, noise, seed, record_every,
                     "joint design")


def in_silico_evolution(objectives: Sequence[Objective], start: Sequence[str],
                        rounds: int = 100, mutants: int = 50, seed: int = 0,
                        record_every: int = 5, batch_size: int = 8192) -> Design:
    """Greedy in-silico evolution from ``start`` sequences: every round, each sequence's
    ``mutants`` random single-base substitutions (position and new base drawn with
    ``seed``) are scored with the objectives (one-hot) and the best replaces the sequence
    when it lowers the loss. The mutation baseline of gReLU and Ledidi; same objectives and
    scores as the gradient methods.

    Raises MedgenInputError for no objective, no start sequences, rounds < 1 or mutants < 1.
    """
    _check_objectives(objectives)
    if not len(start) or rounds < 1 or mutants < 1:
        raise MedgenInputError(f"in-silico evolution: {len(start)} start sequences, rounds "
                               f"{rounds}, mutants {mutants}; expected >= 1 each")
    rng = np.random.default_rng(seed)
    current = torch.from_numpy(one_hot(start).astype(np.float32))
    n, length, _ = current.shape

    def losses(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([total_loss(objectives, x[i: i + batch_size])
                              for i in range(0, len(x), batch_size)])

    loss = losses(current)
    rows = [_record(objectives, current, 0)]
    for round_ in tqdm(range(1, rounds + 1), desc="in-silico evolution", disable=None):
        position = rng.integers(0, length, size=(n, mutants))
        shift = rng.integers(1, 4, size=(n, mutants))  # to one of the 3 other bases
        base = (current.argmax(dim=2).numpy()[np.arange(n)[:, None], position] + shift) % 4
        candidates = current.unsqueeze(1).repeat(1, mutants, 1, 1)  # (n, m, L, 4)
        rows_i, cols_i = np.arange(n)[:, None], np.arange(mutants)[None, :]
        candidates[rows_i, cols_i, position] = 0.0
        candidates[rows_i, cols_i, position, base] = 1.0
        candidate_loss = losses(candidates.view(n * mutants, length, 4)).view(n, mutants)
        best = candidate_loss.argmin(dim=1)
        improved = candidate_loss[torch.arange(n), best] < loss
        current[improved] = candidates[torch.arange(n), best][improved]
        loss = torch.where(improved, candidate_loss[torch.arange(n), best], loss)
        if round_ % record_every == 0 or round_ == rounds:
            rows.append(_record(objectives, current, round_))
    return Design(decode(current.numpy()), None, pd.DataFrame(rows), list(start))


def random_sequences(n: int, length: int, composition: dict[str, float], seed: int = 0
                     ) -> Design:
    """``n`` sequences of i.i.d. bases drawn at ``composition`` (base -> probability, e.g.
    the training split's), seeded: the design baseline that optimises nothing."""
    p = np.array([composition[b] for b in ALPHABET], dtype=np.float64)
    if n < 1 or length < 1 or (p < 0).any() or not p.sum() > 0:
        raise MedgenInputError(f"random sequences: n {n}, length {length}, composition "
                               f"{composition}; expected n, length >= 1 and a composition")
    codes = np.random.default_rng(seed).choice(4, size=(n, length), p=p / p.sum())
    return Design(["".join(ALPHABET[c] for c in row) for row in codes])


def best_measured(sequences: Sequence[str], values: np.ndarray, n: int,
                  target: str | float = "max") -> Design:
    """The ``n`` measured sequences best for ``target`` (highest for 'max', lowest for
    'min', closest for a number): what a lab would pick without a model. Ties keep the
    table's order."""
    values = np.asarray(values, dtype=np.float64)
    if len(sequences) != len(values) or not len(values):
        raise MedgenInputError(f"best measured: {len(sequences)} sequences and {len(values)} "
                               "measurements; expected as many, at least one")
    if target == "max":
        key = -values
    elif target == "min":
        key = values
    else:
        key = np.abs(values - float(target))
    order = np.argsort(key, kind="stable")[:n]
    return Design([sequences[i] for i in order])
