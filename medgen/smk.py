"""Glue for workflow/scripts: log to the rule's log file and fail with one clear line;
the trainer settings a training rule passes on."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from medgen.errors import MedgenInputError


@contextlib.contextmanager
def logged(snakemake: Any) -> Iterator[logging.Logger]:
    """Send logging (and stderr, where progress bars go) to the rule's ``log:`` file."""
    log_path = snakemake.log[0] if snakemake.log else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    stream = None
    if log_path:
        stream = open(log_path, "a")  # noqa: SIM115 - closed below
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        handlers=handlers, force=True,
    )
    logger = logging.getLogger(f"medgen.rule.{snakemake.rule}")
    try:
        yield logger
    except MedgenInputError as err:
        logger.error("%s", err)  # bad input: the message says it all
        raise
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
    finally:
        if stream is not None:
            stream.flush()
            sys.stderr = sys.__stderr__
            stream.close()


def trainer_settings(snakemake: Any) -> dict[str, Any]:
    """The rule's ``params.training`` plus ``progress_bar`` and ``checkpoint_every_n_epochs``,
    which common.smk keeps out of the params (they change only the log and the resume points,
    so changing them must not retrain) and the script reads from the config instead."""
    training = snakemake.config["training"]
    return {**snakemake.params.training, "progress_bar": training["progress_bar"],
            "checkpoint_every_n_epochs": training.get("checkpoint_every_n_epochs", 1)}
