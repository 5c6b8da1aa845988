"""The generation evaluation of the sequence-design task (issue 30 item 2): trained DNA GANs
beside the i.i.d. and Markov-chain baselines, every method against the held-out real
windows.

- Reference: the **test** windows (never the training ones); the training windows serve
  the baselines' fit, the motif thresholds and the memorisation distance.
- Generated: ``n_samples`` sequences per method. A GAN's per-position base probabilities
  become sequences by **argmax** (``medgen.data.sequence.decode``), the sequences a user of
  the model gets; the baselines draw ``n_samples`` from chains fitted on the training
  windows (``baselines.fit_baselines``).
- Floor: the row ``real_val`` scores the validation windows (real, held out, at most
  ``n_samples``) as if generated: what a perfect generator reaches with this many
  sequences. It is in ``metrics.tsv`` and the figures, not in the tidy table (a
  reference, not a competing method: model cards and replicate comparisons leave it out).
- Metrics (``generation_metrics``): k-mer Jensen-Shannon distance k = 1..6 (``kmer<k>_js``,
  ``kmer6_js`` the headline), GC Wasserstein distance and mean GC, Karlin's dinucleotide
  delta*, homopolymer run-length Wasserstein distance, mean run and mean longest run,
  the mean absolute JASPAR motif hit-rate gap over the motifs most often hit in the
  test windows, the nearest-neighbour Hamming distance to the training windows (mean,
  and the fraction of exact copies) and a classifier two-sample test (``c2st_auroc``: a
  small CNN tells test windows from generated ones; 0.5 = indistinguishable).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from medgen.data.sequence import decode, one_hot
from medgen.errors import MedgenInputError
from medgen.evaluate import tidy
from medgen.tasks.sequence_design import GENERATOR_FAMILIES
from medgen.tasks.sequence_design import generation_metrics as gm
from medgen.tasks.sequence_design.baselines import MARKOV_ORDERS, fit_baselines
from medgen.tasks.sequence_design.prepare import load_prepared

log = logging.getLogger(__name__)

REFERENCE_METHOD = "real_val"  # validation windows scored as if generated (the floor)
C2ST_FILTERS = 16
C2ST_WIDTH = 8  # bases per filter: motif-sized
C2ST_EPOCHS = 8
C2ST_MAX_PER_CLASS = 2000  # sequences per class at most (seconds on 2 cores)


# --- classifier two-sample test ---------------------------------------------------------

class _TwoSampleCNN(nn.Module):
    """One-hot (n, L, 4) -> logit (n,): a conv layer, global max pooling, a linear layer."""

    def __init__(self, filters: int = C2ST_FILTERS, width: int = C2ST_WIDTH) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, filters, width, padding=width // 2)
        self.out = nn.Linear(filters, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.transpose(1, 2))).amax(dim=2)
        return self.out(h).squeeze(1)


def classifier_two_sample_auroc(real: Sequence[str], generated: Sequence[str], seed: int = 0,
                                epochs: int = C2ST_EPOCHS,
                                max_per_class: int = C2ST_MAX_PER_CLASS) -> float:
    """Held-out AUROC of a small CNN trained to tell ``real`` from ``generated`` sequences.

    Both sets are cut to the same size m (the smaller one's, at most ``max_per_class``,
    drawn with ``seed``) so that chance is 0.5; the CNN (``C2ST_FILTERS`` filters of
    ``C2ST_WIDTH`` bases, ReLU, global max pool, linear; Adam, ``epochs`` epochs, batches of
    64) trains on half of each set and is scored on the other half with
    ``sklearn.metrics.roc_auc_score``. 0.5: the sets are indistinguishable to it; 1: it
    separates them. Seeded (``seed``): the same inputs give the same AUROC.

    Raises
    ------
    MedgenInputError
        Fewer than 4 sequences in either set, or sequences of different lengths.
    """
    m = min(len(real), len(generated), max_per_class)
    if m < 4:
        raise MedgenInputError(f"two-sample test: {len(real)} real and {len(generated)} "
                               "generated sequences; expected at least 4 of each")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(len(s), m, replace=False) for s in (real, generated)]
    x = np.concatenate([one_hot([real[i] for i in picks[0]]),
                        one_hot([generated[i] for i in picks[1]])])
    y = np.repeat(np.array([0.0, 1.0], dtype=np.float32), m)
    # half of each class trains, the other half tests
    order = [rng.permutation(m), m + rng.permutation(m)]
    half = m // 2
    train = np.concatenate([o[:half] for o in order])
    test = np.concatenate([o[half:] for o in order])
    torch.manual_seed(seed)
    net = _TwoSampleCNN()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(train), generator=generator).split(64):
            rows = torch.as_tensor(train)[batch]
            loss = nn.functional.binary_cross_entropy_with_logits(net(xt[rows]), yt[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        scores = net(xt[torch.as_tensor(test)]).numpy()
    return float(roc_auc_score(y[test], scores))


# --- the evaluation ---------------------------------------------------------------------

def split_sequences(data_path: str | os.PathLike) -> dict[str, list[str]]:
    """The prepared windows of each split ('train', 'val', 'test') as strings (N for
    all-zero positions).

    Raises
    ------
    MedgenInputError
        The file as ``prepare.load_prepared`` refuses it, or no train or no test windows.
    """
    arrays, _ = load_prepared(data_path)
    split = arrays["split"].astype(str)
    sequences = np.array(decode(arrays["onehot"]), dtype=object)
    out = {name: list(sequences[split == name]) for name in ("train", "val", "test")}
    for name in ("train", "test"):
        if not out[name]:
            raise MedgenInputError(f"{data_path}: no '{name}' windows; the generation "
                                   "evaluation fits on train and compares against test")
    return out


def generate(model_paths: dict[str, str | os.PathLike], train: list[str], n_samples: int,
             seed: int, markov_orders: Sequence[int] = MARKOV_ORDERS,
             length: int | None = None) -> dict[str, list[str]]:
    """``n_samples`` sequences per method: each trained generator's (argmax of its base
    probabilities, ``model.sample(n, seed)``), then the i.i.d. and Markov baselines fitted
    on ``train`` (each drawn with its own Generator seeded by (seed, method index)).

    Raises
    ------
    MedgenInputError
        A model of another task or family than dna_gan (naming it), or one trained on
        windows of another length.
    """
    from medgen.tasks.sequence_design.inference import load

    length = length or len(train[0])
    generated: dict[str, list[str]] = {}
    for family, path in model_paths.items():
        if family not in GENERATOR_FAMILIES:
            raise MedgenInputError(f"{path}: the generation evaluation samples "
                                   f"{', '.join(GENERATOR_FAMILIES)} models; got {family!r}")
        model = load(path, family=GENERATOR_FAMILIES, data={"length": length})
        generated[family] = decode(model.sample(n_samples, seed=seed))
        log.info("%s: %d sequences sampled (seed %d), argmax of the base probabilities",
                 family, n_samples, seed)
    chains = fit_baselines(train, sorted(markov_orders))
    for i, (name, chain) in enumerate(chains.items()):
        generated[name] = chain.sample(n_samples, length, np.random.default_rng([seed, i]))
    log.info("baselines fitted on %d training windows: %s", len(train), ", ".join(chains))
    return generated


def generation_metrics(generated: list[str], reference: list[str], train: list[str],
                       scorers: list | None = None, real_rates: pd.DataFrame | None = None,
                       seed: int = 0) -> dict[str, float]:
    """Every metric of one method (module docstring) against ``reference`` (held-out
    windows); memorisation against ``train``; the motif gap over ``real_rates``' motifs
    (NaN without ``scorers``)."""
    row: dict[str, float] = {f"kmer{k}_js": v
                             for k, v in gm.kmer_js_distances(generated, reference).items()}
    gc = gm.gc_distance(generated, reference)
    row.update(gc_wasserstein=gc["gc_wasserstein"], gc_mean=gc["gc_mean_generated"],
               dinucleotide_delta=gm.dinucleotide_distance(generated, reference))
    runs = gm.homopolymer_stats(generated, reference)
    row.update(homopolymer_wasserstein=runs["homopolymer_wasserstein"],
               homopolymer_mean=runs["homopolymer_mean_generated"],
               longest_run_mean=runs["longest_run_mean_generated"])
    if scorers and real_rates is not None:
        rates = gm.motif_hit_rates(generated, [scorers[i] for i in real_rates.index])
        row["motif_hit_gap"] = float(np.abs(rates["hit_rate"].to_numpy()
                                            - real_rates["hit_rate"].to_numpy()).mean())
    else:
        row["motif_hit_gap"] = float("nan")
    distance = gm.nearest_neighbour_hamming(generated, train)
    row.update(nn_hamming_mean=float(distance.mean()),
               nn_exact_fraction=float((distance == 0).mean()),
               c2st_auroc=classifier_two_sample_auroc(reference, generated, seed))
    return row


def evaluate_generation(
    data_path: str | os.PathLike,
    model_paths: dict[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    n_samples: int = 2000,
    seed: int = 0,
    markov_orders: Sequence[int] = MARKOV_ORDERS,
    motifs: str | os.PathLike | None = None,
    n_motifs: int = 20,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Score generated sequences of each trained generator and baseline against the
    held-out test windows (module docstring).

    Parameters
    ----------
    data_path
        The prepared ``data.npz`` (``prepare``).
    model_paths
        Family -> its trained ``model.pt`` (dna_gan).
    out_dir
        Writes ``metrics.tsv`` (one row per method, split 'test', with ``n_sequences``),
        ``metrics.json`` (settings, reference sizes, the table, provenance),
        ``metrics_tidy.tsv`` (whole-split rows of the generators and baselines; the
        motif gap only with motifs),
        ``gc_content.tsv`` (method, gc per sequence; 'test' the reference),
        ``motif_hit_rates.tsv`` (with motifs), ``generated/<method>.fa`` (headers: id,
        ``synthetic=true``, seed, GC, Hamming distance to the nearest training window) and
        the figures
        ``kmer_js.png`` and ``gc_content.png`` drawn from the written tables.
    n_samples
        Sequences generated per method.
    motifs
        A JASPAR file: the ``n_motifs`` motifs most often hit in the test windows are
        compared; None or '' skips the motif metric (NaN).
    num_threads
        torch threads for sampling and the two-sample CNN (None: torch's default).

    Returns
    -------
    The metrics.json content.

    Raises
    ------
    MedgenInputError
        No train or test windows, a model of another task or family, ``n_samples`` < 4,
        or an unreadable motif file; nothing is written then.
    """
    from medgen import atomic, provenance
    from medgen.tasks.sequence_design.figures import draw_figures

    if n_samples < 4:
        raise MedgenInputError(f"sequence_design.evaluation.n_samples is {n_samples}; "
                               "expected at least 4")
    if num_threads:
        torch.set_num_threads(num_threads)
    out_dir = Path(out_dir)
    windows = split_sequences(data_path)
    train, test = windows["train"], windows["test"]
    scorers, real_rates = None, None
    if motifs:
        scorers = gm.motif_scorers(gm.read_jaspar(motifs), train, seed=seed)
        rates = gm.motif_hit_rates(test, scorers)
        real_rates = rates.sort_values(["hit_rate", "matrix_id"],
                                       ascending=[False, True]).iloc[:n_motifs]
        log.info("motifs: %d JASPAR matrices, the %d most often hit in the test windows "
                 "compared (hit rates %.3f..%.3f)", len(scorers), len(real_rates),
                 real_rates["hit_rate"].min(), real_rates["hit_rate"].max())
    generated = generate(model_paths, train, n_samples, seed, markov_orders)
    sets = dict(generated)
    if windows["val"]:
        rng = np.random.default_rng([seed, 999])
        val = windows["val"]
        picks = np.sort(rng.choice(len(val), min(n_samples, len(val)), replace=False))
        sets[REFERENCE_METHOD] = [val[i] for i in picks]
    else:
        log.warning("no validation windows: no '%s' floor row", REFERENCE_METHOD)
    rows = []
    for method, sequences in sets.items():
        row = {"method": method, "split": "test", "n_sequences": len(sequences),
               **generation_metrics(sequences, test, train, scorers, real_rates, seed)}
        rows.append(row)
        log.info("%s: kmer6_js %.4f, gc_wasserstein %.4f, c2st_auroc %.3f, exact copies "
                 "%.3f", method, row["kmer6_js"], row["gc_wasserstein"], row["c2st_auroc"],
                 row["nn_exact_fraction"])
    table = pd.DataFrame(rows)
    metrics = [c for c in table.columns if c not in ("method", "split", "n_sequences")]

    out_dir.mkdir(parents=True, exist_ok=True)
    for method, sequences in generated.items():
        # each sequence's scores in its header: GC and its distance to the nearest
        # training window (0: a copy), as the summary rows average them
        gc_each = gm.gc_content(sequences)
        nearest = gm.nearest_neighbour_hamming(sequences, train)
        atomic.write_text(out_dir / "generated" / f"{method}.fa", "".join(
            f">{method}_{i} synthetic=true seed={seed} gc={g:.3f} nn_train_hamming={d}\n"
            f"{s}\n" for i, (s, g, d) in enumerate(zip(sequences, gc_each, nearest,
                                                           strict=True))))
    atomic.write_text(out_dir / "metrics.tsv",
                      table.to_csv(sep="\t", index=False, float_format="%.6g"))
    # a metric no method defines (the motif gap without a motif file) stays out of it
    measured = [m for m in metrics if table[m].notna().any()]
    tidy.write([tidy.melt(table[table["method"] != REFERENCE_METHOD], "all", measured)],
               out_dir / tidy.FILE)
    gc = pd.concat([pd.DataFrame({"method": name, "gc": gm.gc_content(s)})
                    for name, s in {"test": test, **sets}.items()], ignore_index=True)
    atomic.write_text(out_dir / "gc_content.tsv",
                      gc.to_csv(sep="\t", index=False, float_format="%.6g"))
    if real_rates is not None:
        motif_table = pd.concat([
            real_rates[["matrix_id", "name"]].assign(
                method=name, real=real_rates["hit_rate"].to_numpy(),
                generated=gm.motif_hit_rates(s, [scorers[i] for i in real_rates.index])
                ["hit_rate"].to_numpy())
            for name, s in sets.items()], ignore_index=True)
        atomic.write_text(out_dir / "motif_hit_rates.tsv",
                          motif_table.to_csv(sep="\t", index=False, float_format="%.6g"))
    summary = {
        "reference": {"split": "test", "n_sequences": len(test),
                      "gc_mean": float(np.nanmean(gm.gc_content(test)))},
        "n_train": len(train), "n_samples": n_samples,
        "sampling": "dna_gan: argmax of the generator's base probabilities per position; "
                    "baselines: sequences drawn from chains fitted on the train windows",
        "floor": f"{REFERENCE_METHOD}: validation windows (real, held out) scored as if "
                 "generated; not in the tidy table",
        "memorisation": "nearest-neighbour Hamming distance to the train windows (both "
                        "strands); nn_exact_fraction: distance 0",
        "two_sample_test": f"CNN ({C2ST_FILTERS} filters of {C2ST_WIDTH} bases, global max "
                           f"pool, linear; {C2ST_EPOCHS} epochs) trained on half of test vs "
                           "generated, AUROC on the other half; 0.5 = indistinguishable",
        "motifs": {"file": str(motifs) if motifs else None,
                   "compared": [] if real_rates is None else list(real_rates["matrix_id"])},
        "metrics": table.to_dict("records"),
        "provenance": provenance.collect(
            config={"n_samples": n_samples, "markov_orders": list(markov_orders),
                    "motifs": str(motifs) if motifs else "", "n_motifs": n_motifs},
            seed=seed, inputs=[data_path, *model_paths.values(), *([motifs] if motifs else [])]),
    }
    atomic.write_json(out_dir / "metrics.json", summary)
    draw_figures(out_dir)
    log.info("sequence generation against %d test windows:\n%s", len(test),
             table.set_index("method")[["kmer6_js", "gc_wasserstein", "dinucleotide_delta",
                                         "c2st_auroc"]].to_string(float_format="%.4f"))
    return summary
