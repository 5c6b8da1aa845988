"""Paired volumes for image synthesis: per subject one or more source modalities and one
target modality on one voxel grid (Nie et al., MICCAI 2017: MR -> CT; here BraTS MR -> MR).

The pairs come from the imaging sample sheet (``medgen.data.imaging.sheet``): one column per
modality, ``split``, optional ``mask`` (brain/body mask) and ``label`` (BraTS tumour
segmentation). Every bad input raises one MedgenInputError naming the file(s); nothing is
written by this module.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgen.data.imaging.readers import read_volume
from medgen.data.imaging.sheet import read_sample_sheet, require_splits
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)
# Two grids are one when no voxel centre moves by more than the larger of AFFINE_ATOL and
# AFFINE_RTOL x the reference's largest voxel spacing: files of one scan written by
# different converters (nibabel and ITK store float32 affines, DICOM direction cosines have
# ~6 decimals) differ by about 1e-5 mm over a whole grid; 1e-3 mm leaves a wide margin and
# stays far below any shift that interpolation would notice (1e-3 of a 1 mm voxel).
AFFINE_ATOL = 1e-3  # mm
AFFINE_RTOL = 1e-4  # of a voxel
CT_HU_RANGE = (-1100.0, 4000.0)  # below: not air; above: beyond dense bone and most metal
MIN_TARGET_COVERAGE = 0.5  # share of the mask a resampled target must cover
EDGE_ATOL = 1e-4  # voxels: float32 affines put a centre on the edge a little off it
# CT air check: the darkest 1 % of a CT in HU holds air (about -1000 HU around the body) or
# lung; without anything below CT_NO_AIR_HU the values are unlikely to be HU
CT_AIR_PERCENTILE = 1.0
CT_AIR_HU = -1000.0
CT_NO_AIR_HU = -100.0  # darkest 1 % above this: no air, lung or fat -> refused
CT_LITTLE_AIR_HU = -500.0  # darkest 1 % above this (fat at most): warned
# a CT in HU whose surroundings were masked to 0 (water) instead of air: a large share of
# exact zeros, and nonzero voxels reaching below 0 HU (fat, lung), which stored values
# without their intercept (air at 0-24, fat near 930) do not
CT_ZERO_BACKGROUND_SHARE = 0.2
CT_BODY_LOW_HU = 0.0


@dataclass(frozen=True)
class SynthesisPair:
    """One subject's files: ``sources`` (modality -> path, in config order) and ``target``."""

    subject: str
    split: str
    sources: dict[str, Path]
    target_name: str
    target: Path | None
    mask: Path | None = None
    label: Path | None = None


@dataclass
class PairVolume:
    """One subject's volumes on the first source's grid, in scanner units.

    Attributes
    ----------
    source
        (C, X, Y, Z) float32, one channel per source modality.
    target
        (X, Y, Z) float32, or None (inference on new data without a target).
    mask
        (X, Y, Z) uint8, 1 inside the brain/body.
    label
        (X, Y, Z) int16 tumour labels (BraTS seg), or None.
    affine
        4x4 voxel -> world (mm) of the first source.
    coverage
        (X, Y, Z) uint8, 1 where the resampled target's field of view covers the voxel;
        None when the target covers the whole grid (or there is no target). The training
        loss and the metrics leave uncovered voxels out.
    grid
        How each file came onto the grid, by role ('target', "source 'x'", 'mask',
        'label'): {'file', 'how': 'same grid' | 'reoriented' | 'resampled', ...}; for the
        target also 'coverage' (share of the mask covered) and 'excluded_voxels'.
    """

    subject: str
    source: np.ndarray
    target: np.ndarray | None
    mask: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    reference: Path
    coverage: np.ndarray | None = None
    grid: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_pairs(sheet: str | Path, sources: list[str], target: str,
               data_root: str | Path | None = None, validation_subject: str | None = None,
               require_target: bool = True) -> list[SynthesisPair]:
    """The pairs of a sample sheet, in sheet order.

    Parameters
    ----------
    sheet
        TSV sample sheet with ``subject``, ``split`` and one column per modality.
    sources, target
        Column names of the source modalities and of the target modality.
    data_root
        Where relative paths start (default: the sheet's folder).
    validation_subject
        A training subject moved to split 'val' (model selection uses it, never a test
        subject).
    require_target
        False for new data: the target column may be absent, and the sheet needs no
        ``split`` (every subject is evaluation data).

    Raises
    ------
    MedgenInputError
        A missing column, file or cell (one modality of a pair missing), a source and a
        target that are the same file, the target among the sources, or a validation
        subject that is not a training subject.
    """
    if not sources:
        raise MedgenInputError("synthesis: no source modality given (synthesis.sources)")
    if target in sources:
        raise MedgenInputError(
            f"config key 'synthesis.target' is '{target}', which is also in synthesis.sources "
            f"{list(sources)}; expected a target that is not a source (a model that copies its "
            "input learns nothing)")
    modalities = [*sources, target] if require_target else list(sources)
    rows = read_sample_sheet(sheet, modalities, data_root=data_root,
                             new_data=not require_target)
    pairs = []
    for row in rows:
        target_path = row.images.get(target)
        if target_path is None and target in row.extra:  # new data: the target is optional
            target_path = Path(row.extra[target])
            if not target_path.is_absolute():
                target_path = Path(data_root or Path(sheet).parent) / target_path
            if not target_path.exists():
                raise MedgenInputError(
                    f"sample sheet {sheet}, subject '{row.subject}': file in column "
                    f"'{target}' does not exist: {target_path}")
        for name in sources:
            if target_path is not None and _same_file(row.images[name], target_path):
                raise MedgenInputError(
                    f"sample sheet {sheet}, subject '{row.subject}': source '{name}' and "
                    f"target '{target}' are the same file ({target_path})")
        pairs.append(SynthesisPair(
            subject=row.subject, split=row.split,
            sources={name: row.images[name] for name in sources}, target_name=target,
            target=target_path, mask=row.mask, label=row.label))
    if validation_subject:
        found = [p for p in pairs if p.subject == validation_subject]
        if not found or found[0].split not in ("train", "val"):
            trainees = [p.subject for p in pairs if p.split == "train"]
            raise MedgenInputError(
                f"config key 'synthesis.validation_subject' is {validation_subject!r}, which "
                f"is not a training subject of {sheet}; one of: {', '.join(trainees)}")
        pairs = [dataclasses.replace(p, split="val") if p.subject == validation_subject
                 else p for p in pairs]
    return pairs


def read_synthesis_sheet(section: dict[str, Any], new_data: bool = False) -> list[SynthesisPair]:
    """The pairs of the ``synthesis`` config section's sample sheet, as the workflow plans.

    ``section``: the resolved ``synthesis`` section; ``new_data``: apply mode (the target
    column is optional and no subject is moved to validation). Read when Snakemake plans a
    run and by ``medgen validate``, so both refuse the same sheets.

    Raises
    ------
    MedgenInputError
        ``synthesis.sample_sheet`` is empty; any problem ``read_pairs`` raises; no subject
        in split 'train' (besides the validation subject) or 'test' (training mode).
    """
    if not section["sample_sheet"]:
        raise MedgenInputError(
            "config key 'synthesis.sample_sheet' is empty, but synthesis.activate is true; "
            "expected the path of a sample sheet (TSV)")
    pairs = read_pairs(
        section["sample_sheet"], section["sources"], section["target"], section["data_root"],
        None if new_data else section["validation_subject"], require_target=not new_data)
    if not new_data:
        require_splits(section["sample_sheet"], [pair.split for pair in pairs],
                       {"train": "the models train on it, less the validation subject",
                        "test": "the evaluation reports on it"})
    return pairs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _read_checked(path: Path, what: str, subject: str) -> tuple[np.ndarray, np.ndarray]:
    # read_volume refuses 4D images (naming the file) and unknown formats
    data, affine = read_volume(path)
    if not np.isfinite(data).all():
        n = int((~np.isfinite(data)).sum())
        raise MedgenInputError(
            f"subject '{subject}': {what} {path} has {n} NaN or infinite voxel(s); fix or "
            "mask them before synthesis")
    return data.astype(np.float32, copy=False), affine


def _axcodes(affine: np.ndarray) -> str:
    import nibabel as nib

    return "".join(nib.orientations.aff2axcodes(affine))


def grid_tolerance(ref_affine: np.ndarray) -> float:
    """mm: how far a voxel centre may sit from its counterpart on the reference grid for
    two grids to count as one: the larger of ``AFFINE_ATOL`` (1e-3 mm) and ``AFFINE_RTOL``
    (1e-4) x the reference's largest voxel spacing."""
    spacing = np.linalg.norm(np.asarray(ref_affine, float)[:3, :3], axis=0)
    return max(AFFINE_ATOL, AFFINE_RTOL * float(spacing.max()))


def grid_offset(affine: np.ndarray, ref_affine: np.ndarray, shape: tuple[int, ...]) -> float:
    """mm: the largest distance between a voxel centre of a grid of ``shape`` (3 axes)
    placed by ``affine`` and the same voxel placed by ``ref_affine`` (reached at a corner of
    the grid: both maps are affine)."""
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape[:3]])), float)
    corners = np.c_[corners, np.ones(len(corners))]
    moved = corners @ (np.asarray(affine, float) - np.asarray(ref_affine, float)).T
    return float(np.linalg.norm(moved[:, :3], axis=1).max())


def _reoriented(affine: np.ndarray, shape: tuple[int, ...], ref_affine: np.ndarray
                ) -> tuple[np.ndarray | None, np.ndarray, tuple[int, ...]]:
    """(nibabel orientation transform or None when the axes already agree, the affine and
    the shape once the axes are permuted/flipped that way)."""
    from nibabel import orientations

    source = orientations.io_orientation(affine)
    wanted = orientations.io_orientation(ref_affine)
    if np.array_equal(source, wanted):
        return None, affine, tuple(shape)
    transform = orientations.ornt_transform(source, wanted)
    new_shape = [0] * len(shape)
    for axis, (to, _) in enumerate(transform):
        new_shape[int(to)] = shape[axis]
    return transform, affine @ orientations.inv_ornt_aff(transform, shape), tuple(new_shape)


def reorientation(affine: np.ndarray, shape: tuple[int, ...], ref_affine: np.ndarray,
                  ref_shape: tuple[int, ...]) -> np.ndarray | None:
    """The nibabel orientation transform (``ornt_transform``) that puts an image of
    ``shape`` and ``affine`` exactly onto the reference grid by permuting and flipping its
    axes (no interpolation), or None when no pure permutation/flip does (another
    orientation only, a shift, other spacing or shape: a real misalignment). Exact means
    every voxel centre within ``grid_tolerance`` of the reference's."""
    transform, new_affine, new_shape = _reoriented(affine, shape, ref_affine)
    if transform is None or new_shape != tuple(ref_shape):
        return None
    ok = grid_offset(new_affine, ref_affine, new_shape) <= grid_tolerance(ref_affine)
    return transform if ok else None


def _axis_change(transform: np.ndarray) -> str:
    """'permuted (stored axis 0 -> 1, ...) and flipped (stored axes 1, 2)' in words."""
    words = []
    targets = [int(to) for to, _ in transform]
    if targets != list(range(len(targets))):
        words.append("permuted (stored axis " + ", ".join(
            f"{axis} -> {to}" for axis, to in enumerate(targets)) + ")")
    flipped = [str(axis) for axis, (_, flip) in enumerate(transform) if flip < 0]
    if flipped:
        words.append(f"flipped (stored {'axes' if len(flipped) > 1 else 'axis'} "
                     f"{', '.join(flipped)})")
    return " and ".join(words)


def _grid_mismatch(affine: np.ndarray, shape: tuple[int, ...], ref_affine: np.ndarray,
                   ref_shape: tuple[int, ...]) -> str:
    """Why an image is not on the reference grid, in words: the permutation/flip of its
    axes if any, then the shape or what remains of the affine (origin, voxel axes) against
    the tolerance."""
    transform, new_affine, new_shape = _reoriented(affine, shape, ref_affine)
    head = ""
    if transform is not None:
        head = (f"its axes are {_axis_change(transform)}: stored {_axcodes(affine)}, the "
                f"source grid {_axcodes(ref_affine)}; once reoriented, ")
    if new_shape != tuple(ref_shape):
        return f"{head}shape {new_shape} vs {tuple(ref_shape)}"
    tol = grid_tolerance(ref_affine)
    diff = np.asarray(new_affine, float) - np.asarray(ref_affine, float)
    origin = float(np.linalg.norm(diff[:3, 3]))
    axes = float(np.linalg.norm(diff[:3, :3], axis=0).max())
    offset = grid_offset(new_affine, ref_affine, new_shape)
    what = []
    if origin > 0:
        what.append(f"origin off by {origin:.3g} mm ("
                    # to 1e-4 mm: float32 affines leave ~1e-6 mm of noise
                    + ", ".join(f"{round(float(v), 4) + 0.0:g}" for v in diff[:3, 3])
                    + " along x, y, z)")
    if offset > origin + tol:  # the voxel axes differ too, not only the origin
        what.append(f"voxel axes (spacing/direction) off by up to {axes:.3g} mm per voxel: "
                    f"voxel centres up to {offset:.3g} mm apart")
    return f"{head}affine: {', '.join(what)}; tolerance {tol:.3g} mm"


def extent_coverage(affine: np.ndarray, shape: tuple[int, ...], ref_affine: np.ndarray,
                    ref_shape: tuple[int, ...]) -> np.ndarray:
    """(X, Y, Z) bool on the reference grid (``ref_shape``, ``ref_affine``): True where the
    reference voxel's centre, mapped into the index space of an image of ``shape`` placed
    by ``affine`` (inverse affine @ reference affine), lies within that image's voxel
    edges, [-0.5, n - 0.5] on every axis: inside its field of view."""
    to_index = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(ref_affine, float)
    axes = [np.arange(n, dtype=float).reshape([-1 if d == j else 1 for d in range(3)])
            for j, n in enumerate(ref_shape[:3])]
    inside = np.ones(tuple(ref_shape[:3]), bool)
    for k, n in enumerate(shape[:3]):
        index = to_index[k, 3] + sum(to_index[k, j] * axes[j] for j in range(3))
        inside &= (index >= -0.5 - EDGE_ATOL) & (index <= n - 0.5 + EDGE_ATOL)
    return inside


def _onto_grid(data: np.ndarray, affine: np.ndarray, ref: tuple[np.ndarray, np.ndarray],
               path: Path, ref_path: Path, resample: bool, nearest: bool,
               coverage: bool = False) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """``data`` on the reference grid, how it got there and, with ``coverage``, where the
    moved image's field of view covers the grid.

    Unchanged when shape and affine agree (``grid_tolerance``); its axes permuted/flipped
    when that alone matches the grid (exact, logged); else resampled with MONAI's
    ``ResampleToMatch`` when allowed, else one error naming both files and what differs.
    Resampled, a voxel is inside the moved image's field of view when its centre lies
    within the image's voxel edges (``extent_coverage``); there the values come from the
    image with its edge values extended into the outer half voxel (border padding, never
    blended with zeros), outside they are 0. ``coverage``: return that map ((X, Y, Z)
    bool), or None when it covers every voxel.

    Returns (data, {'file', 'how', ...}, coverage or None).
    """
    info: dict[str, Any] = {"file": str(path), "how": "same grid"}
    same_shape = data.shape == ref[0].shape
    if same_shape and grid_offset(affine, ref[1], data.shape) <= grid_tolerance(ref[1]):
        return data, info, None
    transform = reorientation(affine, data.shape, ref[1], ref[0].shape)
    if transform is not None:
        from nibabel.orientations import apply_orientation

        info.update(how="reoriented", orientation=_axcodes(affine),
                    to_orientation=_axcodes(ref[1]))
        log.info("%s is stored %s, %s %s: its axes were permuted/flipped onto that grid "
                 "(exact, no interpolation)", path, info["orientation"], ref_path,
                 info["to_orientation"])
        return np.ascontiguousarray(apply_orientation(data, transform)), info, None
    if not resample:
        what = _grid_mismatch(affine, data.shape, ref[1], ref[0].shape)
        also = ("; that also undoes the permutation/flip of its axes"
                if what.startswith("its axes") else "")
        raise MedgenInputError(
            f"{path} and {ref_path} are not on one voxel grid ({what}); set "
            "synthesis.resample_target: true to resample it onto the source grid (linear "
            f"interpolation{also}), or register them")
    # imported here: the workflow reads sample sheets through this module when it plans a
    # run, and snakemake -n must not pay for torch and MONAI
    import torch
    from monai.data import MetaTensor
    from monai.transforms import ResampleToMatch

    fixed = MetaTensor(torch.as_tensor(ref[0])[None], affine=torch.as_tensor(ref[1]))
    # border: a voxel centre in the outer half voxel of the image takes its edge values
    # instead of a blend with zero padding; beyond the edges it is set to 0 below
    resampler = ResampleToMatch(mode="nearest" if nearest else "bilinear",
                                padding_mode="border")
    image = MetaTensor(torch.as_tensor(data)[None], affine=torch.as_tensor(affine))
    moved = np.asarray(resampler(image, fixed)[0], dtype=np.float32)
    inside = extent_coverage(affine, data.shape, ref[1], ref[0].shape)
    moved[~inside] = 0
    info["how"] = "resampled"
    log.info("%s resampled onto the grid of %s (%s interpolation)", path, ref_path,
             "nearest" if nearest else "linear")
    return moved, info, (None if inside.all() or not coverage else inside)


def check_ct_range(target: np.ndarray, path: Path,
                   hu_range: tuple[float, float] | list[float] = CT_HU_RANGE) -> None:
    """MedgenInputError unless a CT target lies within ``hu_range`` (Hounsfield units); the
    message says which bound is crossed and by what value (a CT stored with a rescale
    slope missing, or an MR given as CT, fails here)."""
    low, high = float(np.min(target)), float(np.max(target))
    problems = []
    if low < hu_range[0]:
        problems.append(f"minimum {low:.6g} < {hu_range[0]:g}")
    if high > hu_range[1]:
        problems.append(f"maximum {high:.6g} > {hu_range[1]:g}")
    if problems:
        raise MedgenInputError(
            f"CT target {path} is outside the expected Hounsfield range {list(hu_range)}: "
            f"{' and '.join(problems)} (padding outside the field of view, a missing "
            "rescale slope/intercept, or not a CT?); set synthesis.ct_hu_range if intended")


def check_ct_air(target: np.ndarray, path: Path) -> None:
    """Refuse a CT target whose darkest voxels are not air.

    A CT in Hounsfield units has air around the body (and in the lungs) near -1000 HU: its
    darkest ``CT_AIR_PERCENTILE`` % of voxels lie far below 0. A CT written without its
    rescale intercept (stored values, e.g. uint16 with air at 0-24 and soft tissue near
    1050) passes the range check; this one names the file and the likely intercept. A CT in
    HU whose surroundings were set to 0 (masked to the body: more than
    ``CT_ZERO_BACKGROUND_SHARE`` of the voxels exactly 0, the others reaching below
    ``CT_BODY_LOW_HU``) is told apart and named as such.

    Raises
    ------
    MedgenInputError
        The darkest 1 % of voxels lie above ``CT_NO_AIR_HU`` (no air, lung or fat: a
        missing intercept), or above ``CT_LITTLE_AIR_HU`` with the background set to 0.
        Otherwise a warning is logged between ``CT_LITTLE_AIR_HU`` and ``CT_NO_AIR_HU``
        (fat at most: a CT cropped inside the body?), and for a background set to 0 around
        a body with air inside (lungs).
    """
    darkest = float(np.percentile(target, CT_AIR_PERCENTILE))
    zeros = float(np.mean(target == 0))
    nonzero = target[target != 0]
    body_low = float(np.percentile(nonzero, CT_AIR_PERCENTILE)) if nonzero.size else 0.0
    if zeros > CT_ZERO_BACKGROUND_SHARE and body_low < CT_BODY_LOW_HU:
        # values below 0 HU next to the zeros: HU whose surroundings were masked to 0
        # (water) rather than stored values missing their intercept (all >= 0)
        what = (f"{100 * zeros:.0f} % of its voxels are exactly 0 and the others reach "
                f"{body_low:.6g} HU (their darkest {CT_AIR_PERCENTILE:g} %), as in a CT "
                "in HU whose background outside the body was set to 0 instead of air")
        if darkest > CT_LITTLE_AIR_HU:
            raise MedgenInputError(
                f"CT target {path}: background set to 0 instead of air? Air (the body's "
                f"surroundings) is expected near {CT_AIR_HU:g} HU, but {what}; a model "
                "would learn 0 HU (water) around the body. Set those voxels to "
                f"{CT_AIR_HU:g} HU (or give the CT unmasked), or set "
                "synthesis.target_is_ct: false if it is not a CT in HU")
        # air inside the body (lungs) passes the air check; the zeros are still wrong
        log.warning("CT target %s: background set to 0 instead of air? %s; a model would "
                    "learn 0 HU (water) there: set those voxels to %g HU", path, what,
                    CT_AIR_HU)
        return
    if darkest <= CT_LITTLE_AIR_HU:
        return
    median = float(np.median(target))
    where = (f"its darkest {CT_AIR_PERCENTILE:g} % of voxels lie at {darkest:.6g} or below "
             f"(minimum {float(np.min(target)):.6g}, median {median:.6g})")
    hint = (f"; {100 * zeros:.0f} % of its voxels are exactly 0: if that is a background "
            f"set to 0, set it to {CT_AIR_HU:g} HU instead" if zeros > CT_ZERO_BACKGROUND_SHARE
            else "")
    if darkest > CT_NO_AIR_HU:
        raise MedgenInputError(
            f"CT target {path} does not look like Hounsfield units: air (the body's "
            f"surroundings, the lungs) is expected near {CT_AIR_HU:g} HU, but {where}; "
            "likely a CT written without its rescale intercept (RescaleIntercept / "
            f"scl_inter, here about {CT_AIR_HU - darkest:.0f}); convert it with the "
            "intercept applied, or set synthesis.target_is_ct: false if it is not a CT in "
            f"HU{hint}")
    log.warning("CT target %s: %s, where air near %g HU is expected (a CT cropped inside "
                "the body, or a missing rescale intercept?)%s", path, where, CT_AIR_HU, hint)


def load_pair(pair: SynthesisPair, cfg: dict[str, Any]) -> PairVolume:
    """Read one pair onto the first source's grid and check it.

    Files whose axes are a permutation/flip of the first source's grid are reoriented
    exactly; other grids are resampled (``resample_target``) or refused. A resampled target
    that covers only part of the mask gets a coverage map (``PairVolume.coverage``).

    Parameters
    ----------
    pair
        From ``read_pairs``.
    cfg
        The ``synthesis`` config section: ``resample_target`` (bool), ``mask``
        ('nonzero': any source nonzero, or 'given': the sheet's mask), ``target_is_ct``,
        ``ct_hu_range`` and ``min_target_coverage`` (share of the mask, 0-1).

    Raises
    ------
    MedgenInputError
        A 4D input, NaN voxels, files on different grids (unless resampling), a source
        whose voxels equal the target's, an empty mask, a CT target outside the
        Hounsfield range or without air (``check_ct_air``), or a resampled target covering
        less than ``min_target_coverage`` of the mask.
    """
    names = list(pair.sources)
    ref_path = pair.sources[names[0]]
    ref = _read_checked(ref_path, f"source '{names[0]}'", pair.subject)
    channels = [ref[0]]
    grid: dict[str, dict[str, Any]] = {f"source '{names[0]}'": {"file": str(ref_path),
                                                                "how": "reference grid"}}
    resample = bool(cfg.get("resample_target", False))
    for name in names[1:]:
        data, affine = _read_checked(pair.sources[name], f"source '{name}'", pair.subject)
        data, grid[f"source '{name}'"], _ = _onto_grid(
            data, affine, ref, pair.sources[name], ref_path, resample, nearest=False)
        channels.append(data)
    target = coverage = None
    if pair.target is not None:
        data, affine = _read_checked(pair.target, f"target '{pair.target_name}'", pair.subject)
        if cfg.get("target_is_ct", False):
            check_ct_range(data, pair.target, cfg.get("ct_hu_range", CT_HU_RANGE))
            check_ct_air(data, pair.target)
        target, grid["target"], coverage = _onto_grid(
            data, affine, ref, pair.target, ref_path, resample, nearest=False, coverage=True)
        for name, channel in zip(names, channels):
            # a copy of the target under another name passes the same-file check in
            # read_pairs; a model that copies its input would learn nothing
            if np.array_equal(channel, target):
                raise MedgenInputError(
                    f"subject '{pair.subject}': source '{name}' ({pair.sources[name]}) and "
                    f"target '{pair.target_name}' ({pair.target}) hold the same voxels; the "
                    "target must be another modality than every source")
    extra = {}
    for key in ("mask", "label"):
        path = getattr(pair, key)
        if path is not None:
            data, affine = _read_checked(path, key, pair.subject)
            data, grid[key], _ = _onto_grid(data, affine, ref, path, ref_path, resample,
                                            nearest=True)
            extra[key] = np.rint(data)
    source = np.stack(channels)
    if cfg.get("mask", "nonzero") == "given":
        if "mask" not in extra:
            raise MedgenInputError(
                f"subject '{pair.subject}': synthesis.mask is 'given' but the sample sheet "
                "has no mask for it")
        mask = extra["mask"] > 0
    else:  # skull-stripped MR (BraTS): the brain is where any source is nonzero
        mask = (source != 0).any(axis=0)
    if not mask.any():
        raise MedgenInputError(f"subject '{pair.subject}': the brain/body mask is empty")
    if target is not None:
        coverage = _check_coverage(pair, coverage, mask, grid["target"],
                                   float(cfg.get("min_target_coverage", MIN_TARGET_COVERAGE)))
    label = extra["label"].astype(np.int16) if "label" in extra else None
    return PairVolume(pair.subject, source, target, mask.astype(np.uint8), label, ref[1],
                      ref_path, coverage, grid)


def _check_coverage(pair: SynthesisPair, coverage: np.ndarray | None, mask: np.ndarray,
                    info: dict[str, Any], minimum: float) -> np.ndarray | None:
    """The target's coverage map (uint8) when it misses in-mask voxels, else None; records
    the share covered in ``info``; refuses a share below ``minimum``."""
    total = int(mask.sum())
    covered = total if coverage is None else int((coverage & mask).sum())
    info.update(coverage=covered / total, excluded_voxels=total - covered)
    if covered == total:
        return None
    share = f"{_percent(covered / total, minimum)} %"
    if covered / total < minimum:
        raise MedgenInputError(
            f"subject '{pair.subject}': target '{pair.target_name}' ({pair.target}) covers "
            f"only {share} of the mask ({covered} of {total} voxels) once resampled onto the "
            f"grid of {pair.sources[next(iter(pair.sources))]}; expected at least "
            f"{100 * minimum:g} % (synthesis.min_target_coverage): its field of view is "
            "smaller than the source's")
    log.warning("subject '%s': target %s covers %s of the mask; the %d voxel(s) outside its "
                "field of view are left out of the training loss and the metrics",
                pair.subject, pair.target, share, total - covered)
    return coverage.astype(np.uint8)


def _percent(share: float, minimum: float) -> str:
    """``share`` (0-1) in percent with the decimals that tell it from ``minimum``: 49.98,
    not 50.0 next to a minimum of 50 %."""
    for decimals in range(1, 8):  # a share differs from the minimum by >= 1 voxel
        text = f"{100 * share:.{decimals}f}"
        if (float(text) < 100 * minimum) == (share < minimum):
            return text
    return repr(100 * share)


def check_patch_fits(shape: tuple[int, ...], patch_size: int, where: str) -> None:
    """MedgenInputError when a cubic patch of side ``patch_size`` exceeds a volume of
    ``shape`` (spatial) on any axis."""
    if any(patch_size > s for s in shape):
        raise MedgenInputError(
            f"{where}: patch size {patch_size} is larger than the volume {tuple(shape)}; "
            "lower models.<family>.params.patch_size")
