"""Experiment tracking (the config's ``tracking:`` section): every training job's
hyperparameters, per-epoch metrics and model file, and later its held-out metrics, in
MLflow or TensorBoard through Lightning's own loggers.

One MLflow experiment per run name (``tracking.experiment``, default ``run_name``) holds a
run per trained model (family, and the auto-context level for synthesis), tagged with the
seed, task and medgen revision, so that a replicate set or study is one experiment. The run
id is kept beside the model (``tracking.json``): a resumed job continues its run, and the
model card job adds the held-out metrics to it. TensorBoard writes one folder per model and
seed under ``tracking.uri`` (default ``results/<run_name>/tensorboard``).

Off by default; the backends are an extra (``pip install -e ".[tracking]"``), imported only
when asked for.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only

from medgen import atomic
from medgen import config as medgen_config
from medgen.errors import MedgenInputError

log = logging.getLogger(__name__)

BACKENDS = ("none", "mlflow", "tensorboard")
RUN_FILE = "tracking.json"  # beside model.pt: backend, where, run id
INSTALL_HINT = 'install the tracking extra: pip install -c constraints.txt -e ".[tracking]"'


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved ``tracking`` section with its defaults filled in: ``backend``, ``uri``
    (MLflow: a local file store ``file:<run folder>/mlruns``; TensorBoard: ``<run
    folder>/tensorboard``) and ``experiment`` (the run name)."""
    section = dict(config.get("tracking") or {})
    backend = section.get("backend", "none")
    if backend == "none":
        return {"backend": "none", "uri": "", "experiment": ""}
    run_dir = medgen_config.run_dir(config)
    uri = section.get("uri") or ""
    if not uri:
        uri = ((run_dir / "mlruns").resolve().as_uri() if backend == "mlflow"
               else str(run_dir / "tensorboard"))
    return {"backend": backend, "uri": uri,
            "experiment": section.get("experiment") or config["run_name"]}


def _allow_file_store(uri: str) -> None:
    """MLflow 3 keeps its file store in maintenance mode and refuses it unless opted in;
    it is the default here because it needs no database and takes concurrent jobs on a
    shared filesystem (an sqlite file does not)."""
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise MedgenInputError(
            f"config key 'tracking.backend' asks for {module}, which is not installed: "
            f"{INSTALL_HINT}") from None


class Tracker:
    """The tracking of one training job (one model): a run created up front (MLflow) or a
    log folder (TensorBoard), Lightning loggers for each stage, then the model file.

    Parameters
    ----------
    config
        The resolved config (its ``tracking``, ``run_name``, ``results_dir``).
    name
        The model's name in the experiment (``fanogan``, ``context_gan_level2``).
    out_dir
        The model's folder: ``tracking.json`` is written there.
    tags
        Tags of the run (seed, task, git revision...), as text.
    params
        Hyperparameters and settings logged once (nested dicts are flattened with '/').

    Raises
    ------
    MedgenInputError
        The backend asked for is not installed (names the extra to install).
    """

    def __init__(self, config: dict[str, Any], name: str, out_dir: str | os.PathLike,
                 tags: dict[str, Any], params: dict[str, Any]) -> None:
        self.settings = settings(config)
        self.backend = self.settings["backend"]
        self.name, self.out_dir = name, Path(out_dir)
        self.tags = {k: str(v) for k, v in tags.items()}
        self.run_id: str | None = None
        if rank_zero_only.rank != 0:  # under DDP one process logs (Lightning's loggers too)
            self.backend = "none"
        if self.backend == "none":
            return
        _require({"mlflow": "mlflow", "tensorboard": "tensorboard"}[self.backend])
        _allow_file_store(self.settings["uri"])
        stored = self.out_dir / RUN_FILE
        if stored.is_file():  # a resumed job goes on logging into its own run
            previous = json.loads(stored.read_text())
            if (previous.get("uri"), previous.get("backend")) == (self.settings["uri"],
                                                                 self.backend):
                self.run_id = previous.get("run_id")
        if self.backend == "mlflow" and self.run_id is None:
            self.run_id = self._mlflow_run(params)
        elif self.backend == "tensorboard":
            self.loggers()[0].log_hyperparams(params)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(stored, {
            "backend": self.backend, "uri": self.settings["uri"],
            "experiment": self.settings["experiment"], "run_id": self.run_id,
            "name": self.name, "seed": self.tags.get("seed")})

    def _mlflow_run(self, params: dict[str, Any]) -> str:
        from lightning.fabric.utilities.logger import _flatten_dict
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.settings["uri"])
        experiment = client.get_experiment_by_name(self.settings["experiment"])
        experiment_id = (experiment.experiment_id if experiment is not None
                         else client.create_experiment(self.settings["experiment"]))
        run = client.create_run(experiment_id, tags=self.tags, run_name=self.name)
        flat = _flatten_dict(params, delimiter="/")
        client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000])
                                                  for k, v in flat.items()])
        return run.info.run_id

    def loggers(self, stage: str = "") -> list[Any]:
        """Lightning loggers for one training stage (metrics prefixed by the stage name
        when the family has several), or [] when tracking is off."""
        if self.backend == "mlflow":
            return [_StageMLFlowLogger(
                experiment_name=self.settings["experiment"], run_name=self.name,
                tracking_uri=self.settings["uri"], tags=self.tags, prefix=stage,
                run_id=self.run_id)]
        if self.backend == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            return [TensorBoardLogger(self.settings["uri"], name=self.name,
                                      version=f"seed{self.tags.get('seed', 0)}", prefix=stage,
                                      default_hp_metric=False)]
        return []

    def log_model(self, model_path: str | os.PathLike) -> None:
        """Attach ``model.pt`` to the run (MLflow artifact; TensorBoard: its path as text)."""
        if self.backend == "mlflow":
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.settings["uri"])
            client.log_artifact(self.run_id, str(model_path))
            client.set_terminated(self.run_id)
        elif self.backend == "tensorboard":
            logger = self.loggers()[0]
            logger.experiment.add_text("model_file", str(model_path))
            logger.finalize("success")


def _stage_logger_class():
    from lightning.pytorch.loggers import MLFlowLogger

    class StageMLFlowLogger(MLFlowLogger):
        """MLFlowLogger whose hyperparameters carry the stage prefix too: MLflow refuses a
        parameter logged again with another value, and each stage's plan logs its own."""

        def log_hyperparams(self, params: Any) -> None:
            super().log_hyperparams({self._prefix: dict(params)} if self._prefix else params)

    return StageMLFlowLogger


def _StageMLFlowLogger(**kwargs: Any) -> Any:  # noqa: N802 - built lazily: mlflow is an extra
    return _stage_logger_class()(**kwargs)


def log_evaluation(model_dir: str | os.PathLike, metrics: dict[str, float],
                   files: list[str | os.PathLike] = (),
                   config: dict[str, Any] | None = None) -> bool:
    """Add a model's held-out metrics (and files such as its model card) to the run its
    training job logged (``tracking.json`` in ``model_dir``). Returns False when the model
    was trained without tracking, or when ``config`` (the current run's) has tracking off
    or another store: the current config decides, not what training once did. A store that
    fails (a server down) gets a WARNING, not a failed job: the card is written either way.
    """
    stored = Path(model_dir) / RUN_FILE
    if not stored.is_file():
        return False
    run = json.loads(stored.read_text())
    if config is not None:
        now = settings(config)
        if (now["backend"], now["uri"]) != (run["backend"], run["uri"]):
            log.info("tracking is %s now (the model was tracked in %s %s): its held-out "
                     "metrics are not logged", now["backend"], run["backend"], run["uri"])
            return False
    try:
        _log_evaluation(run, metrics, files)
    except Exception as err:  # noqa: BLE001 - tracking must not lose the card
        log.warning("could not log the held-out metrics of %s to %s (%s): %s: %s",
                    run["name"], run["backend"], run["uri"], type(err).__name__, err)
        return False
    log.info("held-out metrics of %s logged to %s (%s)", run["name"], run["backend"],
             run["uri"])
    return True


def _log_evaluation(run: dict[str, Any], metrics: dict[str, float],
                    files: list[str | os.PathLike]) -> None:
    if run["backend"] == "mlflow":
        _require("mlflow")
        _allow_file_store(run["uri"])
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=run["uri"])
        for key, value in metrics.items():
            client.log_metric(run["run_id"], key, float(value))
        for path in files:
            client.log_artifact(run["run_id"], str(path))
    elif run["backend"] == "tensorboard":
        _require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(Path(run["uri"]) / run["name"] / f"seed{run['seed']}"))
        for key, value in metrics.items():
            writer.add_scalar(key, float(value))
        writer.close()
