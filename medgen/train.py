"""One Lightning entry point for every model family.

What it adds around ``Trainer.fit``:
1. seeds everything, and reseeds at every epoch start from (seed, epoch), so a run resumed
   from an epoch-boundary checkpoint continues exactly as an uninterrupted run would;
2. a checkpoint at the end of every epoch (``checkpoints/last.ckpt``), and resume from it
   when the same output folder is trained again;
3. SIGTERM/SIGUSR1 (what SLURM sends before a time limit) stop training at the next batch,
   leave the last complete checkpoint in place and exit non-zero so Snakemake/SLURM retry;
4. CSV metrics (``metrics.csv``, written when training ends; the live log is in
   ``checkpoints/live/``), one log line per epoch (``EpochLog``) and a progress bar on a
   terminal (``training.progress_bar``: ``medgen.progress.show_progress``).
Checkpoints are read with ``weights_only=True``: they hold tensors and plain values only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.exceptions import SIGTERMException

from medgen import checkpoint, model_card, provenance, registry, tracking
from medgen.atomic import atomic_path
from medgen.data.training_data import TrainingData
from medgen.errors import MedgenInputError
from medgen.family import resolve
from medgen.progress import show_progress
from medgen.seeding import epoch_seed, seed_all

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.ckpt"
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again", distinct from crashes (1)


class TrainingPreempted(SystemExit):
    """Raised after SIGTERM/SIGUSR1; exits with PREEMPTED_EXIT_CODE."""

    def __init__(self, signum: int) -> None:
        super().__init__(PREEMPTED_EXIT_CODE)
        self.signum = signum


class EpochSeeding(Callback):
    """Reseed every RNG at each epoch's first batch: randomness depends on (seed, epoch) only.

    At the first batch rather than at epoch start because creating a DataLoader iterator
    draws from the global RNG, and a resumed run creates it at a different moment.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            seed_all(epoch_seed(self.seed, trainer.current_epoch))


class EpochLog(Callback):
    """One INFO line per training epoch: the epoch, every metric logged for it (training
    losses, the validation metric when there is a validation set) and its seconds, e.g.
    ``epoch 3/50: train_loss=0.4121 val_loss=0.4388 (12.3 s)``.

    What a log file gets instead of a progress bar (and beside one): ``trainer.callback_metrics``
    read at the epoch's end, after its validation; per-step and per-epoch copies
    (``*_step``, ``*_epoch``) of a metric are left out.
    Only the global-zero process logs.
    """

    def __init__(self) -> None:
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        seconds = time.monotonic() - self._started
        log.info("%s", epoch_line(trainer.current_epoch, trainer.max_epochs,
                                  trainer.callback_metrics, seconds))


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, Any],
               seconds: float) -> str:
    """``EpochLog``'s line: ``epoch`` (0-based, as Lightning counts) shown from 1, the scalar
    ``metrics`` (tensors or floats) by name to 4 significant digits, ``seconds`` to 0.1."""
    # a metric logged per step and per epoch comes as name, name_step and name_epoch: keep name
    shown = {name: value for name, value in metrics.items()
             if not name.endswith("_step") and getattr(value, "numel", lambda: 1)() == 1
             and not (name.endswith("_epoch") and name.removesuffix("_epoch") in metrics)}
    values = " ".join(f"{name}={float(value):.4g}" for name, value in sorted(shown.items()))
    of = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    return f"epoch {epoch + 1}{of}: {values or '(no metrics logged)'} ({seconds:.1f} s)"


class StopOnSignal(Callback):
    """Turn SIGTERM/SIGUSR1 into a clean stop at the next batch boundary."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.received is not None:
            signum = self.received
            self._restore()
            log.warning(
                "received %s: stopping; the rerun resumes from the last epoch checkpoint",
                signal.Signals(signum).name,
            )
            raise TrainingPreempted(signum)


def inference_device(accelerator: str) -> str:
    """The torch device for scoring with trained models, from the config's
    ``training.accelerator`` read as Lightning reads it: 'auto' takes a GPU when one is visible."""
    if accelerator == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if accelerator == "gpu":
        raise MedgenInputError(
            "config key 'training.accelerator' is 'gpu' but torch sees no CUDA device here; "
            "run on a GPU node or set it to 'auto' or 'cpu'")
    return "cpu"


def deterministic_setting(training: dict[str, Any]) -> bool | str:
    """``training.deterministic`` as Lightning's ``Trainer(deterministic=...)`` takes it:
    True (the default, also when the key is absent: settings stored before it existed),
    'warn' or False.

    Raises
    ------
    MedgenInputError
        Any other value (the config schema refuses it first; this guards direct callers).
    """
    value = training.get("deterministic", True)
    if value is True or value is False or value == "warn":
        return value
    raise MedgenInputError(
        f"config key 'training.deterministic' is {value!r}; expected one of: true, warn, false")


def make_trainer(
    out_dir: Path,
    training: dict[str, Any],
    max_epochs: int,
    seed: int,
    extra_callbacks: list[Callback] | None = None,
    gan: bool = False,
    extra_loggers: list[Any] | None = None,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A Trainer with medgen's checkpointing, logging, seeding and signal handling.

    ``training.deterministic`` (true, 'warn' or false; true when absent) is Lightning's
    ``deterministic``: true makes torch raise on an op without a deterministic CUDA kernel
    (``deterministic_setting``). ``gan``: alternating generator/critic steps each leave the
    other network's parameters unused, which DDP must be told about. ``extra_loggers``:
    experiment tracking's (``medgen.tracking``) beside the CSV log.
    """
    checkpoints = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="epoch{epoch:03d}",
        auto_insert_metric_name=False,
        every_n_epochs=training.get("checkpoint_every_n_epochs", 1),
        save_top_k=1,  # without a monitor: keep only the newest epoch, plus last.ckpt
        save_last=True,
        # always overwrite last.ckpt: with the counter, a run resumed in a moved/copied folder
        # (checkpoint dirpath differs) wrote last-v1.ckpt and the next resume took the stale
        # last.ckpt
        enable_version_counter=False,
    )
    strategy = "auto"
    if training["devices"] * training["num_nodes"] > 1:
        strategy = "ddp_find_unused_parameters_true" if gan else "ddp"
    if SLURMEnvironment.detect():
        # Snakemake resubmits a stopped job (retries); Lightning's own requeue would fight it.
        trainer_kwargs.setdefault("plugins", [SLURMEnvironment(auto_requeue=False)])
    return L.Trainer(
        default_root_dir=out_dir,
        accelerator=training["accelerator"],
        devices=training["devices"],
        num_nodes=training["num_nodes"],
        strategy=strategy,
        max_epochs=max_epochs,
        deterministic=deterministic_setting(training),
        # Live log inside checkpoints/: out_dir/metrics.csv appears only when training ends.
        logger=[CSVLogger(out_dir / "checkpoints", name="", version="live"),
                *(extra_loggers or [])],
        callbacks=[checkpoints, EpochSeeding(seed), StopOnSignal(), EpochLog(),
                   *(extra_callbacks or [])],
        # 'auto': a bar on a terminal only; a log file gets EpochLog's lines alone
        enable_progress_bar=show_progress(training.get("progress_bar", "auto")),
        enable_model_summary=False,
        log_every_n_steps=1,
        **trainer_kwargs,
    )


def fit(
    plan: L.LightningModule,
    train_loader: Any,
    val_loader: Any,
    out_dir: str | os.PathLike,
    training: dict[str, Any],
    max_epochs: int,
    seed: int,
    signature: dict[str, Any] | None = None,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """Train ``plan``; resume from ``out_dir/checkpoints/last.ckpt`` when it exists.

    ``signature`` (hyperparameters, data checksum, seed...) is stored beside the checkpoints:
    checkpoints written under another signature are discarded rather than resumed, so
    changing the config never continues a stale model. ``max_epochs`` may grow between runs.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    kept_metrics = ckpt_dir / "metrics.csv"  # every epoch trained so far, across resumes
    _discard_stale_checkpoints(ckpt_dir, out_dir / "metrics.csv", signature or {}, seed)
    if training.get("num_threads"):
        torch.set_num_threads(training["num_threads"])
    L.seed_everything(seed, workers=True, verbose=False)
    trainer = make_trainer(out_dir, training, max_epochs, seed,
                           gan=not plan.automatic_optimization, **trainer_kwargs)
    last = ckpt_dir / LAST_CHECKPOINT
    ckpt_path = last if last.exists() else None
    earlier_metrics = None
    if ckpt_path:
        finished_epoch = torch.load(ckpt_path, map_location="cpu", weights_only=True)["epoch"]
        log.info("resuming from %s (epoch %d done)", ckpt_path, finished_epoch)
        earlier_metrics = _metrics_up_to(kept_metrics, finished_epoch)
    try:
        with warnings.catch_warnings():
            # checkpoints/ holds our signature.json and live log by design, and checkpoints of
            # another config were discarded above: Lightning's warning is noise in every log.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
            # on resume the live log starts again; the epochs already trained are kept in
            # checkpoints/metrics.csv and merged back below, so nothing is lost
            warnings.filterwarnings("ignore", message=r"Experiment logs directory .* not empty")
            trainer.fit(plan, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        # Lightning's own SIGTERM handler got there first; it exits with status 0, which
        # would look like success to Snakemake/SLURM.
        log.warning("received SIGTERM: stopping; the rerun resumes from the last epoch checkpoint")
        raise TrainingPreempted(signal.SIGTERM) from None
    finally:
        if trainer.is_global_zero:
            _merge_metrics(ckpt_dir / "live" / "metrics.csv", earlier_metrics, kept_metrics)
    if trainer.is_global_zero and kept_metrics.exists():
        with atomic_path(out_dir / "metrics.csv") as tmp:
            shutil.copyfile(kept_metrics, tmp)
    return trainer


def _discard_stale_checkpoints(
    ckpt_dir: Path, metrics_path: Path, signature: dict[str, Any], seed: int
) -> None:
    wanted = json.dumps({"seed": seed, **signature}, sort_keys=True, default=str)
    stored = ckpt_dir / "signature.json"
    if ckpt_dir.exists() and (not stored.exists() or stored.read_text() != wanted):
        log.warning("checkpoints in %s were made with another configuration: starting afresh",
                    ckpt_dir)
        shutil.rmtree(ckpt_dir)
        metrics_path.unlink(missing_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not stored.exists():
        stored.write_text(wanted)


def _metrics_up_to(metrics_path: Path, epoch: int) -> pd.DataFrame | None:
    if not metrics_path.exists() or metrics_path.stat().st_size == 0:
        return None
    earlier = pd.read_csv(metrics_path, float_precision="round_trip")
    return earlier[earlier["epoch"] <= epoch]


def _merge_metrics(live: Path, earlier: pd.DataFrame | None, kept: Path) -> None:
    """CSVLogger starts a fresh file on resume: put the earlier epochs back in front.

    Always written the same way (round-trip floats, '\n' line ends) so that an interrupted
    and resumed run gives a byte-identical file to an uninterrupted one.
    """
    if not live.exists() or live.stat().st_size == 0:
        return
    newer = pd.read_csv(live, float_precision="round_trip")
    if earlier is not None and len(earlier):
        newer = pd.concat([earlier, newer[newer["epoch"] > earlier["epoch"].max()]])
    with atomic_path(kept) as tmp:
        newer.to_csv(tmp, index=False, lineterminator="\n")


def loader_sizes(data: TrainingData) -> dict[str, int]:
    """Items the training and validation loaders hold (profiles, slices, patches or
    volumes, as the task trains on them): the model card's counts. A loader without a
    sized dataset is left out."""
    sizes = {}
    for name, loader in (("train", data.train), ("val", data.val)):
        try:
            sizes[name] = len(loader.dataset)
        except (AttributeError, TypeError):
            continue
    return sizes


def fit_in_memory(plan: L.LightningModule, train_loader: Any, max_epochs: int, seed: int,
                  num_threads: int | None = None, val_loader: Any = None
                  ) -> L.LightningModule:
    """Train ``plan`` on the CPU without checkpoints, logs or a progress bar (the many short
    fits of a cross-validation); seeded per epoch like ``fit``; validated after every epoch
    when ``val_loader`` is given (plans that select an epoch on it). Returns the trained plan.

    Always deterministic: ``training.deterministic`` is a GPU matter (on the CPU the plans'
    ops are deterministic under every setting), and these fits never leave the CPU.
    """
    if num_threads:
        torch.set_num_threads(num_threads)
    L.seed_everything(seed, workers=True, verbose=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=max_epochs, deterministic=True,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[EpochSeeding(seed)])
    trainer.fit(plan, train_loader, val_loader)
    return plan


def train_model(
    family: str,
    data_path: str | os.PathLike,
    hparams: dict[str, Any],
    training: dict[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
    config: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
) -> Path:
    """Train every stage of ``family`` on ``data_path``; write ``out_dir/model.pt``.

    Parameters
    ----------
    family
        A registered family (``medgen.registry``); its task's ``TaskSpec.training_data``
        reads the data.
    data_path
        The task's prepared training data, as the workflow writes it at
        ``TaskSpec.training_input``: the preprocessed ``.h5ad`` (expression), the prepared
        training folder (anomaly: ``train.npz``), the landmark/target ``.h5ad`` (expression
        inference) or the prepared pairs folder of an auto-context level (synthesis).
    hparams
        Resolved hyperparameters (``medgen.registry.family_hparams``).
    training
        The validated ``training:`` config section; ``max_epochs`` (when set) replaces each
        stage's epochs, except for baselines (``FamilySpec.with_epochs``).
    seed
        Seeds initialisation, shuffling and sampling; stage k trains with
        ``seed + stage.seed_offset``.
    out_dir
        Per stage (``<stage>/`` or the folder itself): ``checkpoints/`` (resumed from
        ``last.ckpt`` when its signature matches: same family, hyperparameters, training
        data content, epochs-independent settings) and ``metrics.csv``; then ``model.pt``
        (``medgen.checkpoint`` format).
    config
        The resolved config, stored in the checkpoint (default: hparams and training).
    callbacks
        Extra Lightning callbacks (e.g. timers in benchmarks).

    Returns
    -------
    Path of ``model.pt``.

    Raises
    ------
    MedgenInputError
        Unknown family, or training data that do not fit the family.
    """
    spec = registry.get(family)
    out_dir = Path(out_dir)
    data = resolve(registry.task(spec.task).training_data)(data_path, hparams, seed, family)
    tracker = _tracker(config, family, spec.task, hparams, training, seed, out_dir)
    epochs_of = spec.with_epochs(hparams, training.get("max_epochs"))
    state: dict[str, dict[str, torch.Tensor]] = {}
    stage_provenance: dict[str, Any] = {}  # e.g. which epoch a plan exported
    trainer = None
    for stage in spec.stages:
        epochs = epochs_of[stage.epochs_key]
        stage_seed = seed + stage.seed_offset
        seed_all(stage_seed)  # initial weights depend on the seed only, not on what ran before
        plan = resolve(stage.plan).build(hparams, data.dims, state)
        # names the stage that EpochLog's lines below belong to (fanogan: gan, then encoder)
        log.info("%s: %smax_epochs=%d, seed %d, deterministic %s, into %s", family,
                 f"stage '{stage.name}', " if stage.name else "", epochs, stage_seed,
                 deterministic_setting(training), out_dir / stage.name)
        # Checkpoints of another family, stage, configuration, training data or process
        # layout are never resumed.
        signature = {"family": family, "stage": stage.name, "hparams": hparams,
                     "data_sha256": data.content_hash,
                     "devices": [training["devices"], training["num_nodes"]]}
        if deterministic_setting(training) is not True:
            # another training.deterministic retrains from scratch, not from epochs trained
            # with other kernels (only when not the default: older checkpoints still resume)
            signature["deterministic"] = deterministic_setting(training)
        with warnings.catch_warnings():
            if stage.frozen_modules:  # pretrained networks stay in eval mode on purpose
                warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            trainer = fit(plan, data.train, data.val, out_dir / stage.name, training, epochs,
                          stage_seed, signature=signature, extra_callbacks=callbacks,
                          extra_loggers=tracker.loggers(
                              stage.name if len(spec.stages) > 1 else ""))
        state.update(plan.export_state())
        if hasattr(plan, "export_provenance"):
            stage_provenance.update(plan.export_provenance())
    path = out_dir / checkpoint.MODEL_FILE
    if trainer is not None and not trainer.is_global_zero:
        return path  # one writer under DDP
    checkpoint.save(checkpoint.Checkpoint(
        family=family, hparams=dict(hparams), state=state, data=data.signature,
        config=config or {"training": training, "hparams": hparams},
        provenance={**data.provenance, **stage_provenance, "samples": loader_sizes(data),
                    "training": provenance.collect(
            config={"training": training, "hparams": hparams}, seed=seed, inputs=[data_path])},
        seed=int(seed),
    ), path)
    tracker.log_model(path)
    return path


def _tracker(config: dict[str, Any] | None, family: str, task: str, hparams: dict[str, Any],
             training: dict[str, Any], seed: int, out_dir: Path) -> tracking.Tracker:
    """The training job's experiment tracking (``medgen.tracking``; off without a
    ``tracking`` section, e.g. when called outside the workflow)."""
    config = config if config and "run_name" in config else {"tracking": {}}
    name = model_card.method_name(family, out_dir / checkpoint.MODEL_FILE)
    return tracking.Tracker(
        config, name, out_dir,
        tags={"seed": seed, "family": family, "task": task,
              "run_name": config.get("run_name", ""),
              "medgen_revision": provenance.git_revision()},
        params={"family": family, "seed": seed, "hparams": hparams,
                "training": {k: v for k, v in training.items()}})
