"""Checks of the ``sequence_design`` config section that the schema cannot express, run when
a config is validated (before any job). Torch-free."""

from __future__ import annotations

import math
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
        ``count_prefix``; design settings that cannot run (:func:`_check_design`).
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
    if section["source"] == "fasta":
        if "sequence_predictor" in section["families"]:
            raise MedgenInputError(
                "config key 'sequence_design.families' lists sequence_predictor, but "
                "sequence_design.source is 'fasta' (sequences without measurements): set "
                "source: table or remove sequence_predictor")
        return
    _check_design(section)
    table = section["table"]
    if (table["value_column"] is None) == (table["count_prefix"] is None):
        raise MedgenInputError(
            "config keys 'sequence_design.table.value_column' and "
            "'sequence_design.table.count_prefix': set exactly one (a measurement column, "
            "or the prefix of sort-seq bin counts with value_column: null)")


def _check_design(section: dict[str, Any]) -> None:
    """``sequence_design.design``: a target of 'max', 'min' or a number; 'joint' only with
    dna_gan among the families; a motif or motif experiment only with a JASPAR file
    (``evaluation.motifs``)."""
    design = section["design"]
    target = design["target"]
    if isinstance(target, str) and target not in ("max", "min"):
        raise MedgenInputError(f"config key 'sequence_design.design.target' is {target!r}; "
                               "expected 'max', 'min' or a number")
    if "sequence_predictor" not in section["families"]:
        return
    if "joint" in (design["methods"] or []) and "dna_gan" not in section["families"]:
        raise MedgenInputError(
            "config key 'sequence_design.design.methods' lists 'joint' (GAN + predictor), "
            "which needs a trained dna_gan: add dna_gan to sequence_design.families")
    for key in ("motif", "motif_experiment"):
        if design[key] and not section["evaluation"]["motifs"]:
            raise MedgenInputError(
                f"config key 'sequence_design.design.{key}' is {design[key]!r} but "
                "'sequence_design.evaluation.motifs' (the JASPAR file) is empty")
