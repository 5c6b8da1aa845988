"""When to draw progress bars: on a terminal only.

A bar redrawn into a file (a Snakemake rule log, a SLURM ``.out`` file) is thousands of
carriage-return lines; there the training loop logs one line per epoch instead
(``medgen.train.EpochLog``) and tqdm loops stay silent (``disable=None``).
"""

from __future__ import annotations

import sys
from typing import Literal

ProgressSetting = bool | Literal["auto"]


def show_progress(setting: ProgressSetting = "auto") -> bool:
    """``training.progress_bar`` resolved: ``True``/``False`` force the bar on/off; ``"auto"``
    shows it only when stderr is a terminal (never in a workflow job, whose stderr is its
    log file: ``medgen.smk.logged``).

    Raises
    ------
    ValueError
        For any other value (the config schema refuses them first).
    """
    if setting == "auto":
        return sys.stderr.isatty()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"progress_bar must be true, false or 'auto', not {setting!r}")
