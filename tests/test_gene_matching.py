"""The one gene matcher of expression inference: training data, evaluation and inference
refuse a duplicated landmark/target gene by default and average it on request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgen.data.gene_matching import average, averaging_matrix, match_genes
from medgen.errors import MedgenInputError
from medgen.tasks.expression_inference.gene_sets import select_genes
from medgen.tasks.expression_inference.prepare import unique_genes


def test_positions_in_wanted_order_and_missing_named():
    positions, missing = match_genes(["B", "A", "C"], ["A", "Z", "B"])
    assert positions == {"A": [1], "B": [0]}
    assert missing == ["Z"]


def test_a_duplicated_wanted_gene_is_refused_naming_gene_and_key():
    with pytest.raises(MedgenInputError, match=r"table\.csv: 1 gene\(s\) appear more than "
                       r"once \(first: \['A'\]\).*set x\.duplicate_genes: mean"):
        match_genes(["A", "B", "A"], ["A", "B"], where="table.csv", key="x.duplicate_genes")


def test_duplicates_of_genes_not_wanted_are_never_read():
    positions, _ = match_genes(["A", "junk", "junk"], ["A"])
    assert positions == {"A": [0]}


def test_mean_averages_the_duplicated_columns():
    values = np.array([[1.0, 10.0, 3.0], [2.0, 20.0, 6.0]])
    positions, _ = match_genes(["A", "B", "A"], ["A", "B"], duplicates="mean")
    np.testing.assert_array_equal(average(values, positions), [[2.0, 10.0], [4.0, 20.0]])
    weights = averaging_matrix(3, positions)
    np.testing.assert_allclose(values @ weights, [[2.0, 10.0], [4.0, 20.0]])


def test_an_unknown_rule_is_refused():
    with pytest.raises(MedgenInputError, match="expected one of refuse, mean"):
        match_genes(["A"], ["A"], duplicates="first")


def test_training_selection_uses_the_same_rule():
    values = pd.DataFrame([[1.0, 3.0, 5.0]], columns=["A", "A", "B"])
    with pytest.raises(MedgenInputError, match="appear more than once"):
        select_genes(values, ("A", "B"), "landmark")
    found, missing = select_genes(values, ("A", "B", "C"), "landmark", min_found=0.5,
                                  duplicates="mean")
    assert list(found.columns) == ["A", "B"] and missing == ["C"]
    assert found.to_numpy().tolist() == [[2.0, 5.0]]
    with pytest.raises(MedgenInputError, match="gene_sets.duplicate_genes: mean"):
        unique_genes(values, "refuse")
    assert unique_genes(values, "mean").to_numpy().tolist() == [[2.0, 5.0]]
    unique = pd.DataFrame([[1.0, 2.0]], columns=["A", "B"])
    assert unique_genes(unique, "refuse") is unique  # nothing to do: the same frame
