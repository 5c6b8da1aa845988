"""Sequence design (Killoran, Lee, Delong & Frey 2017, "Generating and designing DNA with deep
generative models"): a WGAN-GP that generates DNA (``dna_gan``) and a sequence ->
measurement CNN (``sequence_predictor``), trained on one prepared set of equal-length
sequences (FASTA windows or a measurement table, ``prepare``, ``loaders``); the generation
baselines (i.i.d. bases, Markov chains, ``baselines``) and metrics (k-mer spectra, GC,
dinucleotides, homopolymers, JASPAR motif hit rates, nearest-neighbour distance,
``generation_metrics``) and the generation evaluation (``evaluate``); design: activation
maximisation, joint GAN + predictor design, explicit PWM objectives, in-silico evolution and
the design baselines (``design``), the evaluation oracle (``oracle``) and the design
evaluation (``design_evaluation``); the apply step (``apply``): a predictor scores new
sequences, a generator samples."""

from medgen.planning import DESIGN_OPTIMISERS
from medgen.planning import SEQUENCE_GENERATORS as GENERATOR_FAMILIES
from medgen.task import MetricSpec, TaskSpec

# GENERATOR_FAMILIES: the families the generation evaluation samples (``evaluate``)
__all__ = ["GENERATOR_FAMILIES", "TASK"]
INTENDED_USE = (
    "Research use: generating DNA sequences that resemble the training sequences in their "
    "k-mer, GC, motif and homopolymer statistics, and predicting a measurement (binding, "
    "expression) of sequences like the measured ones, as candidates for design. Generated "
    "or designed sequences are hypotheses: their activity is predicted, not measured, and "
    "predictions far from the training sequences are extrapolations.")
HOW_TO_APPLY = """\
A config names the model and, for a predictor, the new sequences (a FASTA, cut into windows
of the model's length, or a table), layered on the dataset config the model was trained with:

```yaml
run_name: my_new_sequences
apply: {{activate: true, model: {model}}}
sequence_design: {{source: fasta, path: new.fa}}   # a predictor scores these
# a dna_gan samples sequence_design.sampling.n_sequences sequences (seed: the run's seed)
```

then `snakemake --cores 2 --configfile config/datasets/<dataset>.yaml apply.yaml`: the
predictions (`predictions.tsv`, with `metrics.json` for a table with measurements) or the
generated sequences (`generated.fa`, `generated.tsv`) land in `results/<run_name>/apply/`.
In Python:

```python
from medgen.data.sequence import decode, one_hot
from medgen.tasks.sequence_design.inference import load

model = load("{model}")
sequences = decode(model.sample(1000, seed=0))      # dna_gan
values = model.predict(one_hot(sequences))           # sequence_predictor, measurement units
```"""
TASK = TaskSpec(
    name="sequence_design",
    description="DNA generation and design (Killoran et al. 2017)",
    section="sequence_design",
    training_data="medgen.tasks.sequence_design.loaders:training_data",
    training_input="sequence_design/data.npz",
    apply="medgen.tasks.sequence_design.apply:apply_sequence_design",
    check_apply="medgen.tasks.sequence_design.apply:check_new_data",
    check_config="medgen.tasks.sequence_design.config_checks:check_config",
    # what the generation evaluation reports (generated against held-out windows); the
    # headline first
    metrics=(MetricSpec("kmer6_js", higher_is_better=False),
             MetricSpec("gc_wasserstein", higher_is_better=False),
             MetricSpec("dinucleotide_delta", higher_is_better=False),
             # the design predictor's test accuracy (beside the additive and mean baselines)
             MetricSpec("pearson_r", higher_is_better=True),
             MetricSpec("mse", higher_is_better=False, unit="squared_error"),
             # the designs, scored by the evaluation oracle (split 'design'): the
             # optimisers against random and the best measured sequences; named by the
             # design target's direction (design_evaluation.target_metrics)
             MetricSpec("oracle_mean", higher_is_better=True),
             MetricSpec("oracle_max", higher_is_better=True),
             MetricSpec("oracle_mean_to_minimise", higher_is_better=False),
             MetricSpec("oracle_min", higher_is_better=False),
             MetricSpec("oracle_abs_error", higher_is_better=False)),
    intended_use=INTENDED_USE,
    how_to_apply=HOW_TO_APPLY,
    compared_as_models=DESIGN_OPTIMISERS,
)
