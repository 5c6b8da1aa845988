"""Checks of the ``sequence_design`` config section that the schema cannot express, run when
a config is validated (before any job). Torch-free."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from medgen.errors import MedgenInputError


def check_config(config: dict[str, Any]) -> None:
    """``TaskSpec.check_config`` of the sequence-design task (only when it is in tasks).

    Raises
    ------
    MedgenInputError
        An empty ``sequence_design.path``; ``split_fractions`` that do not sum to 1 or
        give no training share; ``sequence_predictor`` listed with source 'fasta' (no
        measurements to train on); a table with both or neither of ``value_column`` and
        ``count_prefix``; design settings that cannot run (:func:`_check_design`); in a
        training run with families, a val or test share of 0.
    """
    if "sequence_design" not in config.get("tasks", []):
        return
    section = config["sequence_design"]
    # apply mode checks its own needs (medgen.tasks.sequence_design.apply.check_new_data):
    # a generator samples without data
    if not section["path"] and not config["apply"]["activate"]:
        raise MedgenInputError("config key 'sequence_design.path' is empty; name the FASTA "
                               "(source 'fasta') or the measurement table (source 'table')")
    fractions = section["split_fractions"]
    if not (fractions[0] > 0 and math.isclose(sum(fractions), 1.0, abs_tol=1e-6)):
        raise MedgenInputError(
            f"config key 'sequence_design.split_fractions' is {fractions}; expected "
            "(train, val, test) summing to 1 with train > 0")
    if section["families"] and not config["apply"]["activate"]:
        # every family is evaluated on the test split; val: the predictor's validation and
        # the ridge baseline's alpha, the generation evaluation's reference row
        for i, name in ((2, "test"), (1, "val")):
            if not fractions[i] > 0:
                raise MedgenInputError(
                    f"config key 'sequence_design.split_fractions' is {fractions}: the {name} "
                    f"share is 0, but {', '.join(section['families'])} are evaluated with "
                    "a val and a test split; expected (train, val, test), each > 0 (unless "
                    "the table brings its own set column)")
    if section["source"] == "fasta":
        if "sequence_predictor" in section["families"]:
            raise MedgenInputError(
                "config key 'sequence_design.families' lists sequence_predictor, but "
                "sequence_design.source is 'fasta' (sequences without measurements): set "
                "source: table or remove sequence_predictor")
        return
    _check_design(section, config["apply"]["activate"])
    table = section["table"]
    if (table["value_column"] is None) == (table["count_prefix"] is None):
        raise MedgenInputError(
            "config keys 'sequence_design.table.value_column' and "
            "'sequence_design.table.count_prefix': set exactly one (a measurement column, "
            "or the prefix of sort-seq bin counts with value_column: null)")


def _check_design(section: dict[str, Any], apply: bool = False) -> None:
    """``sequence_design.design``: a target of 'max', 'min' or a finite number; 'joint' only
    with dna_gan among the families; a motif or motif experiment only with a JASPAR file
    (``evaluation.motifs``) that holds it (checked when the file exists; not in apply mode,
    which designs nothing)."""
    design = section["design"]
    target = design["target"]
    if (target not in ("max", "min") if isinstance(target, str)
            else isinstance(target, bool) or not math.isfinite(target)):
        raise MedgenInputError(f"config key 'sequence_design.design.target' is {target!r}; "
                               "expected 'max', 'min' or a finite number")
    if "sequence_predictor" not in section["families"]:
        return
    if "joint" in (design["methods"] or []) and "dna_gan" not in section["families"]:
        raise MedgenInputError(
            "config key 'sequence_design.design.methods' lists 'joint' (GAN + predictor), "
            "which needs a trained dna_gan: add dna_gan to sequence_design.families")
    motifs = section["evaluation"]["motifs"]
    for key in ("motif", "motif_experiment"):
        if design[key] and not motifs:
            raise MedgenInputError(
                f"config key 'sequence_design.design.{key}' is {design[key]!r} but "
                "'sequence_design.evaluation.motifs' (the JASPAR file) is empty")
        if design[key] and not apply and Path(motifs).is_file():
            # Biopython's reader, as the design job uses it: its error, up front
            from medgen.tasks.sequence_design.generation_metrics import read_jaspar

            try:
                read_jaspar(motifs, [design[key]])
            except MedgenInputError as err:
                raise MedgenInputError(
                    f"config key 'sequence_design.design.{key}' is {design[key]!r}: {err}"
                ) from None
