"""TCGA barcode helpers: patient, sample type and tumour/normal from a sample barcode.

A TCGA aliquot barcode reads ``TCGA-E2-A1L7-01A-11R-A143-13``: project, tissue source site
and participant make the patient (first 12 characters); characters 14-15 are the sample
type code (01-09 tumour, 10-19 normal, 20-29 control). Some tables (syng-bts, R exports)
write the barcode with '.' instead of '-'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from medgen.errors import MedgenInputError

# Project-TSS-participant, then the two-digit sample type code.
_BARCODE = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9]{2}-[A-Za-z0-9]{4}-(\d{2})")

TUMOR, NORMAL, CONTROL = "tumor", "normal", "control"


def normalise_barcode(barcode: str) -> str:
    """Return ``barcode`` with '.' separators written as '-' (the GDC spelling)."""
    return str(barcode).strip().replace(".", "-")


def patient_id(barcode: str) -> str:
    """The patient part of a barcode: its first 12 characters (``TCGA-E2-A1L7``)."""
    return normalise_barcode(barcode)[:12]


def sample_type_code(barcode: str) -> str:
    """The two-digit sample type code (barcode characters 14-15), e.g. ``'01'``.

    Raises
    ------
    MedgenInputError
        If the barcode does not look like ``TCGA-XX-XXXX-NN...``.
    """
    match = _BARCODE.match(normalise_barcode(barcode))
    if match is None:
        raise MedgenInputError(
            f"sample '{barcode}' is not a TCGA barcode (expected e.g. TCGA-E2-A1L7-01A...; "
            "characters 14-15 give the sample type); set expression.barcode_labels: false "
            "for tables whose sample IDs are not TCGA barcodes"
        )
    return match.group(1)


def tumor_normal(code: str, sample: str = "?") -> str:
    """Map a sample type code to 'tumor' (01-09), 'normal' (10-19) or 'control' (20-29).

    Codes from 30 on (cell lines, xenografts, ...) are neither, so they fail loudly rather
    than land silently in one class.
    """
    value = int(code)
    if 1 <= value <= 9:
        return TUMOR
    if 10 <= value <= 19:
        return NORMAL
    if 20 <= value <= 29:
        return CONTROL
    raise MedgenInputError(
        f"sample '{sample}' has TCGA sample type code {code}; expected 01-09 (tumour), "
        "10-19 (normal) or 20-29 (control)"
    )


def barcode_table(barcodes: Iterable[str]) -> pd.DataFrame:
    """Labels derived from barcodes, one row per barcode (index = normalised barcode).

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``sample_type`` (two-digit code) and ``tumor_normal``.
    """
    rows = []
    for raw in barcodes:
        code = sample_type_code(raw)
        rows.append(
            {
                "sample": normalise_barcode(raw),
                "patient": patient_id(raw),
                "sample_type": code,
                "tumor_normal": tumor_normal(code, sample=str(raw)),
            }
        )
    columns = ["sample", "patient", "sample_type", "tumor_normal"]
    return pd.DataFrame(rows, columns=columns).set_index("sample")
