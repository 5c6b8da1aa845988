"""Readers: every format becomes (float32 array, 4x4 RAS affine) or 2D image arrays.

NIfTI and Analyze go through nibabel, MetaImage (.mha/.mhd) through a small header parser,
DICOM series (a folder) through pydicom: single-frame slices or enhanced multi-frame files,
sorted by position along the slice normal, one series per folder, gantry tilt and irregular
spacing refused or corrected as configured.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import zlib
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIBABEL_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".img.gz")
METAIMAGE_TYPES = {
    "MET_UCHAR": np.uint8, "MET_CHAR": np.int8, "MET_USHORT": np.uint16,
    "MET_SHORT": np.int16, "MET_UINT": np.uint32, "MET_INT": np.int32,
    "MET_FLOAT": np.float32, "MET_DOUBLE": np.float64,
}
TILT_TOLERANCE_DEG = 0.5  # slice step vs slice normal; scanners round positions to ~0.01 mm
SPACING_TOLERANCE = 0.01  # relative variation of slice steps accepted as regular


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".img.gz"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _as_3d(data: np.ndarray, path: Path) -> np.ndarray:
    # Analyze/NIfTI often carry trailing singleton dimensions (x, y, z, 1)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 2:
        # a single slice (x, y, 1) has no third dimension to speak of
        why = (" (a 3D volume has at least 2 voxels along each axis)"
               if data.ndim == 3 else "")
        raise MedgenInputError(
            f"{path}: expected a 3D volume, got an image of shape {tuple(data.shape)}{why}"
        )
    return data


def _read_analyze_gz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Analyze pair with a gzipped image (x.hdr + x.img.gz), which nibabel does not pair.

    The header comes from nibabel; the voxels are decoded here (dtype, byte order, Fortran
    order, slope/intercept from that header).
    """
    stem = str(path)[: -len(_suffix(path))]
    header_path, image_path = Path(stem + ".hdr"), Path(stem + ".img.gz")
    if not header_path.exists():
        raise MedgenInputError(f"{path}: Analyze header {header_path} is missing")
    image = nib.load(str(header_path))
    header = image.header
    dtype = header.get_data_dtype().newbyteorder(header.endianness)
    shape = header.get_data_shape()
    payload = gzip.decompress(image_path.read_bytes())
    offset = int(header["vox_offset"])
    count = int(np.prod(shape))
    if len(payload) < offset + count * dtype.itemsize:
        raise MedgenInputError(f"{path}: truncated Analyze image data")
    data = np.frombuffer(payload, dtype=dtype, count=count, offset=offset)
    data = data.reshape(shape, order="F").astype(np.float32)
    slope, inter = header.get_slope_inter()
    if slope is not None and np.isfinite(slope) and slope != 0:
        data = data * np.float32(slope) + np.float32(inter or 0)
    return _as_3d(data, path), image.affine.astype(np.float64)


def read_nibabel(path: Path) -> tuple[np.ndarray, np.ndarray]:
    suffix = _suffix(path)
    gz_pair = suffix == ".img.gz" or (
        suffix == ".hdr" and not path.with_suffix(".img").exists()
        and path.with_suffix(".img.gz").exists()
    )
    try:
        if gz_pair:
            return _read_analyze_gz(path)
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile,
            nib.filebasedimages.ImageFileError) as err:
        raise MedgenInputError(
            f"{path}: cannot read image (truncated or corrupt file?): {err}"
        ) from None
    return _as_3d(data, path), image.affine.astype(np.float64)


def _metaimage_header(path: Path) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as handle:
        for raw in handle:
            offset += len(raw)
            key, sep, value = raw.decode("latin-1").partition("=")
            if not sep:
                raise MedgenInputError(f"{path}: not a MetaImage header line: {raw[:60]!r}")
            header[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                break
    return header, offset


def read_metaimage(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """MetaImage (.mha with LOCAL data, or .mhd + raw file); LPS world -> RAS affine."""
    header, offset = _metaimage_header(path)
    try:
        dims = [int(v) for v in header["DimSize"].split()]
        dtype = np.dtype(METAIMAGE_TYPES[header["ElementType"]])
        data_file = header["ElementDataFile"]
    except KeyError as err:
        raise MedgenInputError(f"{path}: MetaImage header lacks or misstates {err}") from None
    if int(header.get("ElementNumberOfChannels", "1")) != 1:
        raise MedgenInputError(f"{path}: multi-channel MetaImage is not supported")
    if header.get("BinaryDataByteOrderMSB", "False").lower() == "true":
        dtype = dtype.newbyteorder(">")
    if data_file == "LOCAL":
        payload = path.read_bytes()[offset:]
    else:
        payload = (path.parent / data_file).read_bytes()
    if header.get("CompressedData", "False").lower() == "true":
        try:
            payload = zlib.decompress(payload)
        except zlib.error as err:
            raise MedgenInputError(f"{path}: compressed data is corrupt: {err}") from None
    count = int(np.prod(dims))
    if len(payload) < count * dtype.itemsize:
        raise MedgenInputError(
            f"{path}: truncated MetaImage data ({len(payload)} bytes for {count} voxels)"
        )
    data = np.frombuffer(payload[: count * dtype.itemsize], dtype=dtype)
    data = data.reshape(dims[::-1]).T.astype(np.float32)  # file order is x fastest
    ndim = len(dims)
    spacing = [float(v) for v in header.get("ElementSpacing", " ".join(["1"] * ndim)).split()]
    origin = [float(v) for v in header.get("Offset", " ".join(["0"] * ndim)).split()]
    matrix = header.get("TransformMatrix")
    direction = (
        np.array([float(v) for v in matrix.split()]).reshape(ndim, ndim).T  # column = axis
        if matrix else np.eye(ndim)
    )
    affine = np.eye(4)
    affine[:ndim, :ndim] = direction * np.array(spacing)[None, :]
    affine[:ndim, 3] = origin
    return _as_3d(data, path), LPS_TO_RAS @ affine


@dataclasses.dataclass
class DicomFrame:
    """One 2D image of a series: rescaled pixels (rows, columns) and its geometry (LPS mm)."""

    pixels: np.ndarray
    position: np.ndarray  # ImagePositionPatient, (3,)
    orientation: np.ndarray  # ImageOrientationPatient: row then column direction, (6,)
    spacing: tuple[float, float]  # PixelSpacing: between rows, between columns
    source: str  # file name (and frame number)


def _tag(ds, keyword: str, where: str, tags: dict[str, str]) -> list[float]:
    value = ds.get(keyword) if ds is not None else None
    if value is None:
        raise MedgenInputError(
            f"{where}: DICOM image without {keyword} ({tags[keyword]}); a series needs "
            "ImagePositionPatient, ImageOrientationPatient and PixelSpacing on every slice"
        )
    return [float(v) for v in value]


_GEOMETRY_TAGS = {
    "ImagePositionPatient": "0020,0032", "ImageOrientationPatient": "0020,0037",
    "PixelSpacing": "0028,0030",
}
# Enhanced multi-frame objects keep each geometry tag in a functional group sequence.
_FUNCTIONAL_GROUPS = {
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
}


def _functional_group(ds, frame: int):
    """A Dataset-like view of frame ``frame``'s geometry: per-frame groups, then shared."""
    per_frame = ds.PerFrameFunctionalGroupsSequence[frame]
    shared = ds.get("SharedFunctionalGroupsSequence")
    merged = {}
    for keyword, sequence in _FUNCTIONAL_GROUPS.items():
        for groups in (per_frame, shared[0] if shared else None):
            items = groups.get(sequence) if groups is not None else None
            if items and keyword in items[0]:
                merged[keyword] = items[0].get(keyword)
                break
    return merged


def _frames(ds, file: Path) -> list[DicomFrame]:
    """The 2D frames of one DICOM image object (several for enhanced multi-frame files)."""
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = ds.pixel_array.astype(np.float32).reshape(n_frames, int(ds.Rows), int(ds.Columns))
    if n_frames > 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        raise MedgenInputError(
            f"{file}: multi-frame DICOM ({n_frames} frames) without per-frame functional "
            "groups, so the frames have no positions; convert it to single-frame files"
        )
    enhanced = "PerFrameFunctionalGroupsSequence" in ds
    if enhanced and len(ds.PerFrameFunctionalGroupsSequence) != n_frames:
        raise MedgenInputError(
            f"{file}: enhanced DICOM with {n_frames} frames (NumberOfFrames) but "
            f"{len(ds.PerFrameFunctionalGroupsSequence)} per-frame functional groups; "
            "expected one per frame")
    frames = []
    for i in range(n_frames):
        geometry = _functional_group(ds, i) if enhanced else ds
        where = f"{file} (multi-frame, frame {i + 1})" if enhanced else str(file)
        slope = float(geometry.get("RescaleSlope") or ds.get("RescaleSlope", 1) or 1)
        intercept = float(geometry.get("RescaleIntercept") or ds.get("RescaleIntercept", 0) or 0)
        frames.append(DicomFrame(
            pixels=pixels[i] * np.float32(slope) + np.float32(intercept),
            position=np.array(_tag(geometry, "ImagePositionPatient", where, _GEOMETRY_TAGS)),
            orientation=np.array(_tag(geometry, "ImageOrientationPatient", where,
                                      _GEOMETRY_TAGS)),
            spacing=tuple(_tag(geometry, "PixelSpacing", where, _GEOMETRY_TAGS)),
            source=where,
        ))
    return frames


def _set_transfer_syntax(ds) -> None:
    """A dataset read without file meta needs a transfer syntax to decode its pixels: the
    encoding it was parsed with (in memory only; the file is not touched)."""
    from pydicom import uid
    from pydicom.dataset import FileMetaDataset

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    ds.file_meta = meta if meta is not None else FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = (
        uid.ImplicitVRLittleEndian if implicit
        else uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
    )


def _read_dicom_object(file: Path):
    """(dataset, had_preamble) or None for a file that is not DICOM.

    Older archives store datasets without the 128-byte preamble and 'DICM' marker: those
    are read with ``force=True`` when they parse to something with a SOP class or pixels.
    """
    import pydicom

    try:
        return pydicom.dcmread(file), True
    except pydicom.errors.InvalidDicomError:
        pass
    try:
        ds = pydicom.dcmread(file, force=True)
        if "SOPClassUID" in ds or "PixelData" in ds:
            _set_transfer_syntax(ds)
            return ds, False
    except Exception:  # noqa: BLE001 - forced parsing of a non-DICOM file fails in many ways
        pass
    return None


def dicom_series_frames(folder: Path) -> list[DicomFrame]:
    """Every image frame of the one series in ``folder``.

    Objects that are not part of the volume are skipped and counted in the log: files
    without pixel data (DICOMDIR, dose reports, presentation states), localisers, and images
    without ImagePositionPatient (secondary captures stored beside the slices). Files
    without the DICOM preamble are read and counted.

    Raises
    ------
    MedgenInputError
        Fewer than 2 frames (the message counts what the folder held), several series, a
        colour image (named), or a slice lacking orientation or pixel spacing (file and tag
        named).
    """
    files = sorted(p for p in folder.iterdir() if p.is_file())
    images, skipped, not_dicom, no_preamble = [], [], 0, 0
    for file in files:
        read = _read_dicom_object(file)
        if read is None:
            not_dicom += 1
            continue
        ds, preamble = read
        no_preamble += not preamble
        # enhanced objects keep geometry in functional groups, even with a single frame
        multi_frame = (int(ds.get("NumberOfFrames", 1) or 1) > 1
                       or "PerFrameFunctionalGroupsSequence" in ds)
        if "PixelData" not in ds:
            skipped.append((file.name, "no pixel data"))
        elif "LOCALIZER" in [str(v).upper() for v in ds.get("ImageType", [])]:
            skipped.append((file.name, "localiser"))
        elif not multi_frame and "ImagePositionPatient" not in ds:
            skipped.append((file.name, "no ImagePositionPatient (0020,0032)"))
        else:
            images.append((file, ds))
    if no_preamble:
        log.warning("%s: %d DICOM files without the 128-byte preamble and 'DICM' marker were "
                    "read as plain datasets", folder, no_preamble)
    if skipped:
        log.warning("%s: skipped %d DICOM objects that are not slices of the volume (%s)",
                    folder, len(skipped),
                    ", ".join(f"{name}: {why}" for name, why in skipped[:5])
                    + (" ..." if len(skipped) > 5 else ""))
    series = sorted({str(ds.get("SeriesInstanceUID", "?")) for _, ds in images})
    if len(series) > 1:
        raise MedgenInputError(
            f"{folder}: holds {len(series)} DICOM series ({', '.join(series)}); "
            "put each series in its own folder"
        )
    frames = []
    for file, ds in images:
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        # PALETTE COLOR has one sample per pixel, but its values are colour-table indices
        if int(ds.get("SamplesPerPixel", 1)) > 1 or not photometric.startswith("MONOCHROME"):
            raise MedgenInputError(
                f"{file}: colour DICOM image ({ds.get('SamplesPerPixel')} samples per pixel, "
                f"{ds.get('PhotometricInterpretation', '?')}), e.g. a secondary capture; "
                "medgen reads greyscale series: move it out of the series folder"
            )
        frames += _frames(ds, file)
    if len(frames) < 2:
        found = [f"{len(frames)} image slice{'s' if len(frames) != 1 else ''}"]
        if skipped:
            found.append(f"{len(skipped)} objects skipped ({skipped[0][0]}: {skipped[0][1]}"
                         + (", ..." if len(skipped) > 1 else "") + ")")
        if not_dicom:
            found.append(f"{not_dicom} files that are not DICOM")
        raise MedgenInputError(
            f"{folder}: a DICOM series folder needs at least 2 image slices (or one "
            f"multi-frame image); of its {len(files)} files: {', '.join(found)}"
        )
    return frames


def read_dicom_series(
    folder: Path, tilt: Literal["refuse", "correct"] = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    """A folder holding one DICOM series -> (x, y, slice) volume in rescaled units and affine.

    Single-frame slices and enhanced multi-frame files (geometry from the functional
    groups) are read; see :func:`dicom_series_frames` for what is skipped or refused.
    Slices are sorted along the slice normal; gantry tilt or irregular spacing (a missing
    slice) is refused, or with ``tilt='correct'`` interpolated to a regular stack.
    """
    frames = dicom_series_frames(folder)
    orientation = frames[0].orientation
    if any(not np.allclose(f.orientation, orientation, atol=1e-4) for f in frames):
        raise MedgenInputError(f"{folder}: slices of the series differ in orientation")
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array([f.position for f in frames])
    order = np.argsort(positions @ normal)
    frames = [frames[i] for i in order]
    positions = positions[order]
    pixels = np.stack([f.pixels for f in frames])  # (slice, row, col)
    steps = np.diff(positions, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    if np.any(lengths < 1e-6):
        raise MedgenInputError(f"{folder}: two slices share one position (duplicate slices?)")
    cos = np.clip(np.abs(steps @ normal) / lengths, 0, 1)
    tilt_deg = float(np.degrees(np.arccos(cos.min())))
    irregular = float(lengths.max() / lengths.min() - 1)
    if tilt == "refuse" and tilt_deg > TILT_TOLERANCE_DEG:
        raise MedgenInputError(
            f"{folder}: DICOM series with gantry tilt {tilt_deg:.1f} degrees and slice steps "
            f"{lengths.min():.2f}-{lengths.max():.2f} mm; set anomaly.dicom_tilt: correct "
            "to resample it to a regular stack (sheared affine)"
        )
    if tilt == "refuse" and irregular > SPACING_TOLERANCE:
        along = positions @ normal
        gaps = np.flatnonzero(lengths > lengths.min() * (1 + SPACING_TOLERANCE))
        at = ", ".join(f"{along[i]:.2f} -> {along[i + 1]:.2f}" for i in gaps[:5])
        raise MedgenInputError(
            f"{folder}: irregular slice spacing (missing slice?): steps of "
            f"{lengths.min():.2f}-{lengths.max():.2f} mm, the larger between slice positions "
            f"{at} mm along the slice normal; set anomaly.dicom_tilt: correct to interpolate "
            "a regular stack"
        )
    stack_dir = (positions[-1] - positions[0]) / np.linalg.norm(positions[-1] - positions[0])
    t = (positions - positions[0]) @ stack_dir
    off_line = np.linalg.norm(positions - positions[0] - np.outer(t, stack_dir), axis=1)
    if off_line.max() > 0.1 * lengths.min():
        raise MedgenInputError(f"{folder}: slice positions do not lie on one line")
    step = float(np.median(lengths))  # the typical spacing; irregular gaps get interpolated
    grid = np.arange(0.0, t[-1] + 1e-6, step)
    # linear interpolation between the two bracketing slices (exact when spacing is regular)
    upper = np.clip(np.searchsorted(t, grid, side="right"), 1, len(t) - 1)
    w = ((grid - t[upper - 1]) / (t[upper] - t[upper - 1]))[:, None, None]
    volume = (1 - w) * pixels[upper - 1] + w * pixels[upper]
    row_spacing, col_spacing = frames[0].spacing
    affine = np.eye(4)
    affine[:3, 0] = row_dir * col_spacing  # array axis 0 runs along a row (column index)
    affine[:3, 1] = col_dir * row_spacing
    affine[:3, 2] = stack_dir * step
    affine[:3, 3] = positions[0]
    return volume.transpose(2, 1, 0).astype(np.float32), LPS_TO_RAS @ affine


def read_volume(
    path: str | Path, dicom_tilt: Literal["refuse", "correct"] = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    """Read any supported 3D image: (float32 array (x, y, z), 4x4 affine to RAS mm)."""
    path = Path(path)
    if not path.exists():
        raise MedgenInputError(f"image {path} does not exist")
    if path.is_dir():
        return read_dicom_series(path, dicom_tilt)
    suffix = _suffix(path)
    if suffix in NIBABEL_SUFFIXES:
        return read_nibabel(path)
    if suffix in (".mha", ".mhd"):
        return read_metaimage(path)
    if suffix == ".npz":
        raise MedgenInputError(f"{path}: a 2D .npz image array, but a 3D volume is expected")
    raise MedgenInputError(
        f"{path}: unsupported image format '{suffix}'; expected .nii, .nii.gz, .hdr/.img, "
        ".mha, .mhd or a DICOM series folder"
    )


def read_npz2d(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MedMNIST layout: ``<split>_images`` (N, H, W) and ``<split>_labels``.

    Returns
    -------
    images : numpy.ndarray
        (N, H, W) float32, as stored.
    labels : numpy.ndarray
        (N,) int64: the class of single-label files ((N,) or (N, 1)); for multi-label files
        ((N, K) of 0/1, one column per finding, as ChestMNIST) 1 when any finding is
        present, 0 (normal) only when none is; -1 when the file has no labels.

    Raises
    ------
    MedgenInputError
        Unreadable file, missing images, images not (N, H, W), or labels with several
        columns that are not 0/1 findings.
    """
    path = Path(path)
    try:
        with np.load(path) as archive:
            keys = set(archive.files)
            if f"{split}_images" not in keys:
                raise MedgenInputError(
                    f"{path}: no array '{split}_images'; arrays: {', '.join(sorted(keys))}"
                )
            images = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"] if f"{split}_labels" in keys else None
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise MedgenInputError(
            f"{path}: cannot read .npz (truncated or corrupt?): {err}"
        ) from None
    if images.ndim != 3:
        raise MedgenInputError(
            f"{path}: '{split}_images' must be (N, H, W) grey images, got {images.shape}"
        )
    if labels is None:
        labels = np.full(len(images), -1)  # unlabelled: evaluation skips these
    if len(labels) != len(images):  # a reshape would silently pair images with wrong labels
        raise MedgenInputError(
            f"{path}: '{split}_labels' has {len(labels)} rows for {len(images)} images in "
            f"'{split}_images'; expected one row per image")
    labels = labels.reshape(len(images), -1)
    if labels.shape[1] > 1:
        # One column per finding: "normal" must mean no finding in any column, not in the
        # first (cutting to column 0 made images with other findings normal).
        if not np.isin(labels, (0, 1)).all():
            raise MedgenInputError(
                f"{path}: '{split}_labels' has {labels.shape[1]} columns that are not 0/1 "
                "findings; expected one label column, or one 0/1 column per finding"
            )
        log.info("%s: %d-column multi-label '%s_labels': an image is anomalous (1) when any "
                 "finding is present", path, labels.shape[1], split)
        return images.astype(np.float32), labels.any(axis=1).astype(np.int64)
    return images.astype(np.float32), labels[:, 0].astype(np.int64)
