"""Imaging sample sheets: a TSV with one row per subject, validated by its own schema.

Columns: ``subject``, ``split`` (train/val/test) or ``group``, one column per modality path,
optional ``mask`` and ``label`` paths, and ``npz_split`` for MedMNIST-layout .npz files.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from medgen.atomic import atomic_path
from medgen.config import load_yaml, package_file
from medgen.errors import MedgenInputError

SHEET_SCHEMA_PATH = package_file("schemas", "imaging_sheet.schema.yaml")
SPLITS = ("train", "val", "test")
OPTIONAL_PATH_COLUMNS = ("mask", "label")


@dataclass(frozen=True)
class SheetRow:
    """One subject: its split and the paths of its images."""

    subject: str
    split: str
    images: dict[str, Path]  # modality -> path, in config order
    mask: Path | None = None
    label: Path | None = None
    npz_split: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        return [*self.images.values(), *(p for p in (self.mask, self.label) if p is not None)]


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a TSV sample sheet (column -> cell, None for a missing cell).

    See ``read_tsv_lines``, which also gives each row's line number in the file.
    """
    return [row for _, row in read_tsv_lines(path)]


def read_tsv_lines(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    """(line number in the file, column -> cell) for each row of a TSV sample sheet.

    The header is the first non-blank line (names stripped; a UTF-8 byte-order mark, as
    Excel writes it, is dropped); blank lines are skipped; a row with fewer cells than the
    header gets None for the rest.

    Raises
    ------
    MedgenInputError
        The file does not exist or is a folder; is not UTF-8 text; names a column twice in
        its header; has a row with more cells than the header (often: a header separated
        by spaces, not tabs); has no rows (empty, or a header only).
    """
    path = Path(path)
    if path.is_dir():
        raise MedgenInputError(
            f"sample sheet {path} is a folder; expected a tab-separated (TSV) file")
    if not path.is_file():
        where = "" if path.is_absolute() else (
            f" (relative paths start from the working directory, {Path.cwd()})")
        raise MedgenInputError(f"sample sheet {path} does not exist{where}")
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str | None]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter="\t")
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                if header is None:
                    header, header_line = [cell.strip() for cell in cells], reader.line_num
                    repeated = sorted({n for n in header if n and header.count(n) > 1})
                    if repeated:
                        raise MedgenInputError(
                            f"sample sheet {path}, line {header_line}: column(s) "
                            f"{', '.join(map(repr, repeated))} named twice in the header; "
                            "expected each column once")
                    continue
                if len(cells) > len(header):
                    raise MedgenInputError(
                        f"sample sheet {path}, line {reader.line_num}: {len(cells)} "
                        f"tab-separated cells, but the header (line {header_line}) names "
                        f"{len(header)} column(s): {', '.join(map(repr, header))}; expected "
                        "one header name per column, separated by tabs")
                cells = cells + [None] * (len(header) - len(cells))
                rows.append((reader.line_num, dict(zip(header, cells))))
    except UnicodeDecodeError as err:
        raise MedgenInputError(
            f"sample sheet {path} is not UTF-8 text (byte {err.object[err.start]:#x} at "
            f"offset {err.start}); expected a UTF-8 encoded TSV file") from None
    if not rows:
        raise MedgenInputError(f"sample sheet {path} has no rows")
    return rows


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def assign_splits(
    subjects: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Seeded subject-level split: each subject goes to exactly one of train/val/test."""
    rng = np.random.default_rng(seed)
    order = sorted(subjects)
    rng.shuffle(order)
    n = len(order)
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    if n - n_test - n_val < 1:
        raise MedgenInputError(
            f"the split settings leave no training subject for {n} subjects "
            f"(val_fraction={val_fraction}, test_fraction={test_fraction})"
        )
    return {
        s: "test" if i < n_test else "val" if i < n_test + n_val else "train"
        for i, s in enumerate(order)
    }


def read_sample_sheet(
    path: str | Path, modalities: list[str], split_cfg: dict[str, Any] | None = None,
    seed: int = 0, data_root: str | Path | None = None, new_data: bool = False,
) -> list[SheetRow]:
    """Read and validate a sample sheet; every problem raises one MedgenInputError.

    Checks: row schema, modality columns present, files exist, subject IDs unique, a subject
    in one split only. Rows without ``split`` are split by subject with ``split_cfg``.
    Relative paths start from ``data_root`` (default: the sheet's folder). ``new_data``
    (a trained model applied to new subjects): every row is evaluation data, split 'test',
    and the sheet needs neither a ``split`` nor a ``group`` column.
    """
    path = Path(path)
    raw = read_tsv_lines(path)
    columns = set(raw[0][1])
    missing_cols = [m for m in ["subject", *modalities] if m not in columns]
    if missing_cols:
        raise MedgenInputError(
            f"sample sheet {path} lacks column(s) {', '.join(missing_cols)}; "
            f"it has: {', '.join(sorted(columns))}"
        )
    if "split" not in columns and "group" not in columns and not new_data:
        raise MedgenInputError(f"sample sheet {path} needs a 'split' or a 'group' column")
    validator = jsonschema.Draft7Validator(load_yaml(SHEET_SCHEMA_PATH))
    base = Path(data_root) if data_root else path.parent
    seen_split: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for line, row in raw:
        clean = {k: v.strip() for k, v in row.items() if k is not None and v not in (None, "")}
        error = next(iter(validator.iter_errors(clean)), None)
        if error is not None:
            key = ".".join(map(str, error.absolute_path)) or "row"
            raise MedgenInputError(
                f"sample sheet {path}, line {line}, column '{key}': {error.message}"
            )
        subject = clean["subject"]
        split = clean.get("split")
        if subject in seen_split:
            if split is not None and seen_split[subject] not in (None, split):
                raise MedgenInputError(
                    f"sample sheet {path}, line {line}: subject '{subject}' is in two splits "
                    f"('{seen_split[subject]}' and '{split}'); a subject belongs to one split"
                )
            raise MedgenInputError(
                f"sample sheet {path}, line {line}: duplicate subject ID '{subject}'"
            )
        seen_split[subject] = split
        for column in [*modalities, *OPTIONAL_PATH_COLUMNS]:
            if column in clean and not _resolve(base, clean[column]).exists():
                where = "" if Path(clean[column]).is_absolute() else (
                    " (relative paths start from "
                    + (f"the config's data_root, {base}" if data_root else
                       f"the sheet's folder, {base}") + ")")
                raise MedgenInputError(
                    f"sample sheet {path}, line {line}: file in column '{column}' does not "
                    f"exist: {_resolve(base, clean[column])}{where}"
                )
        for column in modalities:
            if column not in clean:
                raise MedgenInputError(
                    f"sample sheet {path}, line {line}: column '{column}' is empty"
                )
        rows.append(clean)
    if new_data:  # whatever split the sheet gives them: a trained model only scores
        rows = [{**r, "split": "test"} for r in rows]
    unsplit = [r for r in rows if "split" not in r]
    if unsplit:
        split_cfg = split_cfg or {}
        # the subjects of one group (e.g. one patient's scans) share a split: no leakage
        unit = {r["subject"]: f"group:{r['group']}" if "group" in r else f"subject:{r['subject']}"
                for r in unsplit}
        splits = assign_splits(
            sorted(set(unit.values())),
            split_cfg.get("val_fraction", 0.15), split_cfg.get("test_fraction", 0.3), seed,
        )
        for r in unsplit:
            r["split"] = splits[unit[r["subject"]]]
    known = {"subject", "split", "group", "npz_split", *modalities, *OPTIONAL_PATH_COLUMNS}
    return [
        SheetRow(
            subject=r["subject"],
            split=r["split"],
            images={m: _resolve(base, r[m]) for m in modalities},
            mask=_resolve(base, r["mask"]) if "mask" in r else None,
            label=_resolve(base, r["label"]) if "label" in r else None,
            npz_split=r.get("npz_split"),
            extra={k: v for k, v in r.items() if k not in known},
        )
        for r in rows
    ]


def require_splits(sheet: str | Path, splits: list[str], needed: dict[str, str]) -> None:
    """Refuse a sheet whose subjects' ``splits`` lack one of ``needed`` (split -> why it is
    needed, for the message), before any job runs.

    Raises
    ------
    MedgenInputError
        Names the sheet, the missing split, why it is needed and the splits it has.
    """
    present = sorted(set(splits))
    for split, why in needed.items():
        if split not in present:
            raise MedgenInputError(
                f"sample sheet {sheet} has no subject in split '{split}' ({why}); it has: "
                f"{', '.join(present)}")


def write_sample_sheet(path: str | Path, rows: list[dict[str, str]]) -> None:
    """Write rows (dicts with the same keys) as a TSV sample sheet, atomically."""
    columns = list(rows[0])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
