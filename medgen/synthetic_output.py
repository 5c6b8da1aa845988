"""Where synthetic samples may be written, and how many: the checks every sampler
(``medgen sample``, apply-mode sampling) makes before it draws anything, so that a bad request
fails with one message and never half-writes a file or overwrites what it reads."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)
# One request at most: the per-sample metadata (names, categories, FASTA headers) is built
# in memory; more samples are several requests with other seeds.
MAX_SAMPLES = 10_000_000
DISK_MARGIN = 1.1  # the estimate of a file's size is raised by 10% before comparing


def sampling_requested(config: dict, section: str) -> bool:
    """True when ``config``'s ``<section>.sampling.n_samples`` asks a model for samples
    (apply mode's sampling; ``section``: 'expression' or 'anomaly')."""
    return ((config.get(section) or {}).get("sampling") or {}).get("n_samples") is not None


SAMPLING_SECTIONS = ("expression", "anomaly")  # the task sections with a sampling block


def check_count(n: int, what: str = "samples") -> int:
    """``n`` when it is at most ``MAX_SAMPLES`` (MedgenInputError otherwise, saying why)."""
    if n > MAX_SAMPLES:
        raise MedgenInputError(
            f"number of {what} is {n:,}; at most {MAX_SAMPLES:,} per request (the names and "
            "categories of every sample are held in memory): ask several times with other "
            "seeds")
    return n


def check_room(out_path: str | os.PathLike, n_bytes: float, what: str) -> None:
    """MedgenInputError when the file system of ``out_path`` lacks ``n_bytes`` (plus 10%)
    of free space for ``what``: checked before drawing, not found out half-way."""
    folder = Path(out_path).resolve().parent
    while not folder.exists():  # the folder is made when written
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if n_bytes * DISK_MARGIN > free:
        raise MedgenInputError(
            f"{what} would take about {n_bytes / 2**30:,.1f} GiB; {folder} has "
            f"{free / 2**30:,.1f} GiB free: ask for fewer or write elsewhere")


def check_out(out_path: str | os.PathLike, suffixes: Sequence[str],
              written: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike],
              kind: str) -> Path:
    """Refuse an output that cannot be right before anything is drawn.

    Parameters
    ----------
    out_path
        The file asked for.
    suffixes
        Its allowed file name endings (``.h5ad``; ``.fa``, ``.fasta``): the format written.
    written
        Every file the sampler writes (``out_path`` and its sidecars).
    inputs
        Files read (the model, its card, training data, the inputs its provenance records):
        none of them may be overwritten.
    kind
        What is written, for the messages ("an h5ad of profiles").

    An earlier output at a written path is replaced, with a warning naming it.

    Raises
    ------
    MedgenInputError
        ``out_path`` is a folder or ends in a path separator (meant as one), has another
        ending, or any written file is an input.
    """
    out = Path(out_path)
    # Path() drops a trailing '/', which means a folder: s/dir.fa/ would write a file s/dir.fa
    separator = str(out_path).endswith(tuple(filter(None, (os.sep, os.altsep))))
    if separator or out.is_dir():
        what = "ends in a path separator (a folder)" if separator else "is a folder"
        raise MedgenInputError(f"--out {out_path} {what}; give a file name ({kind}, "
                               f"ending {' or '.join(suffixes)})")
    if not out.name.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise MedgenInputError(f"--out {out}: writes {kind}; the name must end "
                               f"{' or '.join(suffixes)}")
    read = {Path(p).resolve(): Path(p) for p in inputs if p}
    for path in written:
        if Path(path).resolve() in read:
            raise MedgenInputError(
                f"writing {path} would overwrite {read[Path(path).resolve()]}, which this "
                "request reads or the model was made from; choose another output name")
    for path in written:
        if Path(path).is_file():
            log.warning("%s exists and will be replaced", path)
    return out
