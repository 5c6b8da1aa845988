"""TCGA barcode helpers: patient, sample type and tumour/normal from a sample barcode.

A TCGA aliquot barcode reads ``TCGA-E2-A1L7-01A-11R-A143-13``: project, tissue source site
and participant make the patient (first 12 characters); characters 14-15 are the sample
type code (01-09 tumour, 10-19 normal, 20-29 control). Some tables (syng-bts, R exports)
write the barcode with '.' instead of '-'; clinical tables use the 12-character patient
barcode alone, whose sample type is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from medgen.errors import MedgenInputError

# Project-TSS-participant, then the two-digit sample type code.
_BARCODE = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9]{2}-[A-Za-z0-9]{4}-(\d{2})")
# A patient barcode alone (12 characters, no sample part), as in clinical tables.
_PATIENT = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9]{2}-[A-Za-z0-9]{4}$")

TUMOR, NORMAL, CONTROL, UNKNOWN = "tumor", "normal", "control", "unknown"

# The GDC's names of the sample type codes (gdc.cancer.gov, "Sample Type Codes").
SAMPLE_TYPES = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Human Tumor Original Cells",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
    "15": "sample type 15",
    "16": "sample type 16",
    "20": "Control Analyte",
}


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


def sample_type_name(code: str) -> str:
    """The GDC name of a sample type code (``'06'`` -> ``'Metastatic'``); codes without a
    standard name read e.g. ``'sample type 17'``."""
    return SAMPLE_TYPES.get(code, f"sample type {code}")


def is_patient_barcode(barcode: str) -> bool:
    """True for a 12-character patient barcode without a sample part (``TCGA-E2-A1L7``)."""
    return _PATIENT.match(normalise_barcode(barcode)) is not None


def barcode_table(barcodes: Iterable[str]) -> pd.DataFrame:
    """Labels derived from barcodes, one row per barcode (index = normalised barcode).

    Patient barcodes (12 characters, no sample part) get their patient and 'unknown'
    sample type and tumour/normal status.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``sample_type_code`` (two digits, '' when unknown),
        ``sample_type`` (GDC name, e.g. 'Primary Tumor', 'Metastatic', 'Solid Tissue
        Normal') and ``tumor_normal`` (tumor, normal, control or unknown).

    Raises
    ------
    MedgenInputError
        For an ID that is neither a sample nor a patient barcode, and for sample type
        codes outside 01-29.
    """
    rows = []
    for raw in barcodes:
        if is_patient_barcode(raw):
            code, name, status = "", UNKNOWN, UNKNOWN
        else:
            code = sample_type_code(raw)
            name, status = sample_type_name(code), tumor_normal(code, sample=str(raw))
        rows.append(
            {
                "sample": normalise_barcode(raw),
                "patient": patient_id(raw),
                "sample_type_code": code,
                "sample_type": name,
                "tumor_normal": status,
            }
        )
    columns = ["sample", "patient", "sample_type_code", "sample_type", "tumor_normal"]
    return pd.DataFrame(rows, columns=columns).set_index("sample")
