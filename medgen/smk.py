"""Glue for workflow/scripts: log to the rule's log file and fail with one clear line;
the trainer settings a training rule passes on."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from medgen.errors import MedgenInputError

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
# libraries that attach their own stderr handler when imported before logging is set up
OWN_HANDLER_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric",
                       "pytorch_lightning", "lightning_fabric")
HEADER_PARAMS_CHARS = 2000  # a sample sheet in the params must not fill the log's head


@contextlib.contextmanager
def logged(snakemake: Any) -> Iterator[logging.Logger]:
    """Run a workflow script with everything it prints in the rule's ``log:`` file.

    1. The log file (appended: a retried job keeps its earlier attempts) gets Python
       logging at INFO, warnings (``logging.captureWarnings``), ``sys.stdout``/``sys.stderr``
       and file descriptors 1 and 2 (C extensions, child processes such as DDP ranks), so
       Snakemake's own output, and a SLURM job's ``.out`` file, stay short. Lightning's
       loggers, which keep their own stderr handler, are routed there too.
    2. Its first lines say which rule ran, on which wildcards, the config values the rule
       passed (its ``params``), the seed, the device and the threads (``job_header``).
    3. torch's intra-op threads are capped at the rule's ``threads`` (Snakemake schedules
       by them; torch would otherwise take every core, and two 1-thread jobs thrash two
       cores), restored on exit; a training rule's ``training.num_threads`` still applies.
    4. A bad input (``MedgenInputError``) is logged as one line and printed as one line on
       the restored stderr, and the job exits with status 1 (``SystemExit``: no traceback on
       the console); anything else is logged with its traceback and re-raised after
       stdout/stderr are restored. Either way the job fails and Snakemake names the log.

    Without a ``log:`` (a rule that declares none) logging goes to stderr as before.
    """
    log_path = snakemake.log[0] if snakemake.log else None
    stream = None
    saved_fds: tuple[int, int] | None = None
    saved_streams = sys.stdout, sys.stderr
    saved_loggers = {name: (logging.getLogger(name).handlers[:],
                            logging.getLogger(name).propagate) for name in OWN_HANDLER_LOGGERS}
    handler_stream = sys.stderr
    if log_path:
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed below; line-buffered
        for std in saved_streams:
            with contextlib.suppress(Exception):
                std.flush()
        with contextlib.suppress(OSError, ValueError):
            saved_fds = os.dup(1), os.dup(2)
            os.dup2(stream.fileno(), 1)
            os.dup2(stream.fileno(), 2)
        sys.stdout = sys.stderr = stream
        handler_stream = stream
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT,
                        handlers=[logging.StreamHandler(handler_stream)], force=True)
    logging.captureWarnings(True)
    for name in OWN_HANDLER_LOGGERS:  # through the root handler, once
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logger = logging.getLogger(f"medgen.rule.{snakemake.rule}")
    for line in job_header(snakemake):
        logger.info("%s", line)
    saved_threads = _cap_torch_threads(getattr(snakemake, "threads", None))
    bad_input = None
    try:
        yield logger
    except MedgenInputError as err:
        logger.error("%s", err)  # bad input: the message says it all
        bad_input = err
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
    finally:
        if saved_threads is not None:
            import torch

            torch.set_num_threads(saved_threads)
        logging.captureWarnings(False)
        for name, (handlers, propagate) in saved_loggers.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate
        if stream is not None:
            for handler in logging.getLogger().handlers:
                handler.flush()
            stream.flush()
            sys.stdout, sys.stderr = saved_streams
            if saved_fds is not None:
                os.dup2(saved_fds[0], 1)
                os.dup2(saved_fds[1], 2)
                os.close(saved_fds[0])
                os.close(saved_fds[1])
            # later records (interpreter exit, a test's next job) must not go to a closed file
            logging.basicConfig(level=logging.INFO, format=LOG_FORMAT,
                                handlers=[logging.StreamHandler(sys.stderr)], force=True)
            stream.close()
    if bad_input is not None:
        # one line on the console too, not a traceback: a user's error, not ours
        print(f"medgen: ERROR in rule {snakemake.rule}: {bad_input}", file=sys.stderr)
        raise SystemExit(1)


def _cap_torch_threads(threads: Any) -> int | None:
    """Set torch's intra-op threads to a rule's ``threads`` (an int >= 1); returns the
    earlier setting to restore, or None where nothing was set. torch is imported here
    (every job that scores or trains imports it anyway)."""
    if not isinstance(threads, int) or threads < 1:
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    return before


def job_header(snakemake: Any) -> list[str]:
    """The first lines of a rule's log: what the job ran with.

    ``rule: <name> (<wildcard>=<value> ...)``, ``config: <the rule's params as JSON>``
    (the config values it reads; cut at ``HEADER_PARAMS_CHARS``), ``seed: <n>`` (the
    rule's ``params.seed``, a replicate's ``{seed}`` wildcard, else the config's ``seed``),
    ``device: accelerator=... devices=... num_nodes=...`` (the rule's ``params.accelerator``
    where it has one, else ``training``; plus the host, ``CUDA_VISIBLE_DEVICES``, the
    SLURM job id and the apptainer image where set) and
    ``threads: <rule threads> (torch: training.num_threads=...)``.
    """
    config = getattr(snakemake, "config", None) or {}
    training = config.get("training") or {}
    params = _named(getattr(snakemake, "params", None))
    wildcards = _named(getattr(snakemake, "wildcards", None))
    where = " ".join(f"{key}={value}" for key, value in wildcards.items())
    shown = json.dumps(params, sort_keys=True, default=str)
    if len(shown) > HEADER_PARAMS_CHARS:
        shown = f"{shown[:HEADER_PARAMS_CHARS]}... ({len(shown)} characters)"
    seed = params.get("seed", wildcards.get("seed", config.get("seed")))
    accelerator = params.get("accelerator", training.get("accelerator"))
    device = (f"accelerator={accelerator} devices={training.get('devices')} "
              f"num_nodes={training.get('num_nodes')} host={socket.gethostname()}")
    for variable in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID"):
        if os.environ.get(variable):
            device += f" {variable}={os.environ[variable]}"
    # set inside an image (--software-deployment-method apptainer): which one ran the job
    container = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if container:
        device += f" container={container}"
    return [
        f"rule: {snakemake.rule}" + (f" ({where})" if where else ""),
        f"config: {shown}",
        f"seed: {seed}",
        f"device: {device}",
        f"threads: {getattr(snakemake, 'threads', None)} "
        f"(torch: training.num_threads={training.get('num_threads')})",
    ]


def _named(items: Any) -> dict[str, Any]:
    """A Snakemake Namedlist (params, wildcards) as a dict of its named entries."""
    if items is None:
        return {}
    if hasattr(items, "items"):
        return dict(items.items())
    return dict(vars(items))


def trainer_settings(snakemake: Any) -> dict[str, Any]:
    """The rule's ``params.training`` plus ``progress_bar`` and ``checkpoint_every_n_epochs``,
    which common.smk keeps out of the params (they change only the log and the resume points,
    so changing them must not retrain) and the script reads from the config instead."""
    training = snakemake.config["training"]
    return {**snakemake.params.training, "progress_bar": training.get("progress_bar", "auto"),
            "checkpoint_every_n_epochs": training.get("checkpoint_every_n_epochs", 1)}
