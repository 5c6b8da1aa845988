"""The anomaly task's sample sheet as the workflow plans it: rows read, splits assigned and
checked for what training and evaluation need."""

from __future__ import annotations

from typing import Any

from medgen.data.imaging.sheet import SheetRow, read_sample_sheet, require_splits
from medgen.errors import MedgenInputError
from medgen.tasks.anomaly.synthetic_anomalies import check_healthy, synthetic_anomalies_on


def read_anomaly_sheet(imaging: dict[str, Any], seed: int, new_data: bool = False
                       ) -> list[SheetRow]:
    """The rows of the ``anomaly`` config section's sample sheet, splits assigned, as the
    workflow plans ([] for the built-in MNI152 demo, which writes its own sheet).

    Read when Snakemake plans a run and by ``medgen validate``, so both refuse the same
    sheets. ``seed``: the run's seed (subject-level split of rows without ``split``);
    ``new_data``: apply mode (a trained model scores new subjects: no split is required).

    Raises
    ------
    MedgenInputError
        ``anomaly.sample_sheet`` empty for a kind other than the demo; any problem
        ``read_sample_sheet`` raises; no subject in split 'train' or 'test' (training
        mode); a labelled evaluation subject when synthetic anomalies are on
        (``check_healthy``).
    """
    sheet = imaging["sample_sheet"]
    if imaging["kind"] == "mni152_demo":
        return []
    if not sheet:
        raise MedgenInputError(
            f"config key 'anomaly.sample_sheet' is empty, but anomaly.kind is "
            f"{imaging['kind']!r}; expected the path of a sample sheet (TSV)")
    rows = read_sample_sheet(sheet, imaging["modalities"], imaging["split"], seed,
                             imaging["data_root"], new_data=new_data)
    if not new_data:
        require_splits(sheet, [row.split for row in rows],
                       {"train": "the models train on it",
                        "test": "the anomaly evaluation reports on it"})
    if synthetic_anomalies_on(imaging):
        check_healthy([row for row in rows if row.split != "train"])
    return rows
