"""Apply a trained auto-context cascade to new subjects: the model's normalisation, one
synthetic volume per subject and level in the source grid, and the evaluation's metrics for
subjects with a target."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from medgen import atomic, checkpoint, registry
from medgen.data.imaging.sheet import read_tsv
from medgen.errors import MedgenInputError
from medgen.family import resolve
from medgen.provenance import sha256_file
from medgen.tasks.synthesis import inference
from medgen.tasks.synthesis.cascade import load_levels, model_preparation
from medgen.tasks.synthesis.evaluate import score_outputs, subject_notes
from medgen.tasks.synthesis.pairs import read_pairs
from medgen.tasks.synthesis.prepare import load_subject, prepare_synthesis, read_manifest

log = logging.getLogger(__name__)
# synthesis settings that describe the new data (grid, mask, CT checks), not the model
NEW_DATA_SETTINGS = ("mask", "resample_target", "target_is_ct", "ct_hu_range",
                     "min_target_coverage")


def check_new_data(config: dict[str, Any], model_path: str | os.PathLike) -> None:
    """Refuse a ``synthesis`` section that does not name new subjects the cascade ending in
    ``model_path`` can run on (see ``synthesis_modalities``).

    Raises
    ------
    MedgenInputError
        An unreadable or incomplete cascade; the key or sample-sheet column that does not
        fit the model.
    """
    paths, levels = load_levels(model_path)
    synthesis_modalities(config["synthesis"], paths[-1], levels[0])


def synthesis_modalities(new: dict[str, Any], model: str | os.PathLike,
                         first: checkpoint.Checkpoint) -> tuple[list[str], str]:
    """(sources, target) the model was trained on, once the ``synthesis`` section ``new``
    names them and its sample sheet has a column for each source (the target column is
    optional); MedgenInputError naming the key or column otherwise (a missing or empty
    sheet: naming ``synthesis.sample_sheet`` and its path)."""
    sources, target = list(first.data["modalities"]), first.data["target"]
    if not new["sample_sheet"]:
        raise MedgenInputError(
            f"config key 'synthesis.sample_sheet' is empty; apply.model ({model}) needs a "
            f"sample sheet of new subjects with column(s) {', '.join(sources)}")
    if list(new["sources"]) != sources:
        raise MedgenInputError(
            f"config key 'synthesis.sources' is {list(new['sources'])}, but apply.model "
            f"({model}) was trained on source(s) {sources} -> '{target}': set "
            f"synthesis.sources: {sources} and name those columns in the sample sheet")
    if new["target"] != target:
        raise MedgenInputError(
            f"config key 'synthesis.target' is {new['target']!r}, but apply.model ({model}) "
            f"synthesises {target!r}: set synthesis.target: {target} (its column is optional)")
    try:  # the reader training mode uses: a missing or empty sheet is one clear error
        rows = read_tsv(Path(new["sample_sheet"]))
    except MedgenInputError as err:
        raise MedgenInputError(f"config key 'synthesis.sample_sheet': {err}") from None
    columns = [name for name in rows[0] if name is not None]
    missing = [name for name in sources if name not in columns]
    if missing:
        raise MedgenInputError(
            f"sample sheet {new['sample_sheet']} has no column {', '.join(missing)}: "
            f"apply.model ({model}) expects the source(s) {sources} (one column each; "
            f"it has: {', '.join(columns)})")
    return sources, target


def apply_synthesis(model_path: str | os.PathLike, config: dict[str, Any],
                    out_dir: str | os.PathLike, device: str = "cpu") -> Path:
    """Run the auto-context cascade that ``model_path`` ends (level K's model.pt, or the
    family folder; ``medgen.tasks.synthesis.cascade``) on the ``synthesis`` sample sheet's
    subjects, prepared with the model's normalisation (measured per subject, as the method
    defines).

    Writes one NIfTI per subject and level in the source grid under ``out_dir/<family>/``,
    ``synthesis.json`` and, for subjects with a target, ``metrics.tsv`` (the evaluation's
    metrics); returns ``metrics.tsv`` when written, else ``synthesis.json``.
    ``synthesis.json`` records how each file came onto the source grid (``grid``: same
    grid, reoriented or resampled, the target's coverage) and, per scored subject, the
    metrics a thin volume leaves NaN and the voxels outside the target's field of view
    (``notes``).

    Raises
    ------
    MedgenInputError
        An incomplete or inconsistent cascade; a sample sheet without the model's sources.
    """
    out_dir = Path(out_dir)
    paths, levels = load_levels(model_path)
    first, new = levels[0], config["synthesis"]
    sources, target = synthesis_modalities(new, paths[-1], first)
    prep = model_preparation(paths[0], first)
    if prep.get("mask") not in (None, new["mask"]):
        log.warning("the model's subjects were masked with %r, the new ones with %r "
                    "(synthesis.mask): the in-mask normalisation sees other voxels",
                    prep["mask"], new["mask"])
    # the model's normalisation; grid, mask and CT checks are properties of the new data
    settings = {**{k: new[k] for k in NEW_DATA_SETTINGS},
                **{k: prep[k] for k in ("normalisation", "target_normalisation", "ct_window")},
                "sample_sheet": new["sample_sheet"], "data_root": new["data_root"],
                "sources": sources, "target": target}
    pairs = [dataclasses.replace(pair, split="test")  # all new: whatever split the sheet says
             for pair in read_pairs(new["sample_sheet"], sources, target, new["data_root"],
                                    require_target=False)]
    data_dir = prepare_synthesis(pairs, settings, out_dir / "data", require_train=False)
    manifest = read_manifest(data_dir)
    models = [resolve(registry.get(s.family).load)(s, device) for s in levels]
    window = {"window": new["inference"]["window"], "overlap": new["inference"]["overlap"]}
    family = first.family
    rows, written = [], {}
    shapes: dict[str, tuple[int, ...]] = {}
    for subject in manifest["subjects"]:
        arrays = load_subject(data_dir, subject)
        mask = arrays["mask"][0]
        outputs, written_paths = inference.synthesise_subject(
            models, arrays["source"], mask, manifest, subject, out_dir / family, **window)
        written[subject] = [str(p) for p in written_paths]
        log.info("%s: %d level(s) written", subject, len(outputs))
        if "target" not in arrays:
            continue
        label = arrays["label"][0] if "label" in arrays else None
        coverage = arrays["coverage"][0] if "coverage" in arrays else None
        shapes[subject] = arrays["target"][0].shape
        scored, _ = score_outputs(
            {f"{family}_level{k}": out for k, out in enumerate(outputs, start=1)},
            arrays["target"][0], manifest, subject, mask, label, coverage)
        rows += [{"subject": subject, **row} for row in scored]
    method = settings["target_normalisation"] or settings["normalisation"]
    summary = {"model": str(model_path), "family": family,
               "levels": [{"path": str(p), "sha256": sha256_file(p)} for p in paths],
               "sources": sources, "target": target, "preparation": settings,
               "units": "HU" if method == "ct_window" else "normalised",
               "subjects": written, "evaluated": sorted({r["subject"] for r in rows}),
               "grid": {s: info.get("grid", {}) for s, info in manifest["subjects"].items()},
               "notes": subject_notes(manifest, list(shapes), shapes)}
    if rows:
        table = pd.DataFrame(rows)
        with atomic.atomic_path(out_dir / "metrics.tsv") as tmp:
            table.to_csv(tmp, sep="\t", index=False)
        summary["mean"] = (table.drop(columns="subject").groupby("method", sort=False).mean()
                           .to_dict(orient="index"))
    atomic.write_json(out_dir / "synthesis.json", json.loads(json.dumps(summary, default=str)))
    return out_dir / "metrics.tsv" if rows else out_dir / "synthesis.json"
