"""Readers: every format becomes (float32 array, 4x4 RAS affine) or 2D image arrays.

NIfTI and Analyze go through nibabel, MetaImage (.mha/.mhd) through a small header parser,
DICOM series (a folder) through pydicom: sorted by position along the slice normal, one
series per folder, gantry tilt and irregular spacing refused or corrected as configured.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from medgen.errors import MedgenInputError

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
        raise MedgenInputError(
            f"{path}: expected a 3D volume, got an image of shape {tuple(data.shape)}"
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


def read_dicom_series(
    folder: Path, tilt: Literal["refuse", "correct"] = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    """A folder holding one DICOM series -> (x, y, slice) volume in rescaled units and affine."""
    import pydicom

    datasets = []
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            datasets.append(pydicom.dcmread(file))
        except pydicom.errors.InvalidDicomError:
            continue  # DICOMDIR, notes and other non-image files
    datasets = [d for d in datasets if "PixelData" in d]
    if len(datasets) < 2:
        raise MedgenInputError(f"{folder}: a DICOM series folder needs at least 2 image files")
    series = sorted({str(d.get("SeriesInstanceUID", "?")) for d in datasets})
    if len(series) > 1:
        raise MedgenInputError(
            f"{folder}: holds {len(series)} DICOM series ({', '.join(series)}); "
            "put each series in its own folder"
        )
    orientation = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    if any(not np.allclose([float(v) for v in d.ImageOrientationPatient], orientation, atol=1e-4)
           for d in datasets):
        raise MedgenInputError(f"{folder}: slices of the series differ in orientation")
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array([[float(v) for v in d.ImagePositionPatient] for d in datasets])
    order = np.argsort(positions @ normal)
    datasets = [datasets[i] for i in order]
    positions = positions[order]
    pixels = np.stack([
        d.pixel_array.astype(np.float32) * float(d.get("RescaleSlope", 1))
        + float(d.get("RescaleIntercept", 0)) for d in datasets
    ])  # (slice, row, col)
    steps = np.diff(positions, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    if np.any(lengths < 1e-6):
        raise MedgenInputError(f"{folder}: two slices share one position (duplicate slices?)")
    cos = np.clip(np.abs(steps @ normal) / lengths, 0, 1)
    tilt_deg = float(np.degrees(np.arccos(cos.min())))
    irregular = float(lengths.max() / lengths.min() - 1)
    if (tilt_deg > TILT_TOLERANCE_DEG or irregular > SPACING_TOLERANCE) and tilt == "refuse":
        raise MedgenInputError(
            f"{folder}: DICOM series with gantry tilt {tilt_deg:.1f} degrees and slice steps "
            f"{lengths.min():.2f}-{lengths.max():.2f} mm; set imaging.dicom_tilt: correct "
            "to resample it to a regular stack (sheared affine)"
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
    row_spacing, col_spacing = (float(v) for v in datasets[0].PixelSpacing)
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
    """MedMNIST layout: ``<split>_images`` (N, H, W) and ``<split>_labels`` (N, 1)."""
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
    labels = labels.reshape(len(images), -1)[:, 0]
    return images.astype(np.float32), labels.astype(np.int64)
