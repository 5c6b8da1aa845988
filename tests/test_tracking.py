"""Experiment tracking (medgen.tracking, the config's `tracking` section): a real MLflow
file store and real TensorBoard event files hold a training job's hyperparameters,
per-epoch metrics, model file and, after evaluation, its held-out metrics."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from medgen import config as medgen_config
from medgen import model_card, tracking
from medgen.data.expression import preprocess_expression
from medgen.errors import MedgenInputError
from medgen.registry import resolve_hparams
from medgen.train import train_model
from tests.test_apply import TRAINING, counts_table

pytestmark = pytest.mark.usefixtures("quiet_warnings")


@pytest.fixture(scope="module")
def expression_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking")
    table = counts_table(root / "train.csv", 60, [f"g{i}" for i in range(20)], seed=2)
    cfg = medgen_config.load(overrides={"expression": {
        "source": "files", "top_k_genes": 10, "labels": ["tumor_normal"],
        "files": [{"path": str(table), "format": "csv", "orientation": "samples_as_rows"}]}})
    preprocess_expression(cfg["expression"]["files"], cfg["expression"], 0,
                          root / "expression.h5ad", root / "split.tsv")
    return root / "expression.h5ad"


def run_config(tmp_path, **section):
    return medgen_config.load(overrides={"results_dir": str(tmp_path / "results"),
                                         "run_name": "trk", "tracking": section})


def train(data, config, out_dir, seed=0):
    hp = resolve_hparams("tybalt", "default", {"latent_dim": 2, "batch_size": 16})
    return train_model("tybalt", data, hp, TRAINING, seed, out_dir, config=config)


def test_mlflow_file_store_holds_params_epoch_metrics_model_and_evaluation(
        expression_data, tmp_path):
    from mlflow.tracking import MlflowClient

    config = run_config(tmp_path, backend="mlflow")
    for seed in (0, 1):  # a replicate set: one experiment, a run per seed
        model = train(expression_data, config, tmp_path / f"seed{seed}" / "tybalt", seed)
    store = (tmp_path / "results" / "trk" / "mlruns").resolve().as_uri()
    assert tracking.settings(config)["uri"] == store
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("trk")  # the run name
    runs = client.search_runs([experiment.experiment_id], order_by=["tags.seed"])
    assert [r.data.tags["seed"] for r in runs] == ["0", "1"]
    run = runs[1]
    assert run.info.run_name == "tybalt" and run.data.tags["task"] == "expression"
    assert run.data.params["hparams/latent_dim"] == "2" and run.data.params["seed"] == "1"
    assert run.info.status == "FINISHED"
    # every metric of the CSV log, each epoch's value
    csv = pd.read_csv(model.parent / "metrics.csv")
    logged = set(csv.columns) - {"epoch", "step"}
    assert logged and logged <= set(run.data.metrics), (logged, run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "train_total")
    assert sorted(m.value for m in history) == pytest.approx(
        sorted(csv["train_total"].dropna()), rel=1e-6)
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["model.pt"]
    stored = json.loads((model.parent / tracking.RUN_FILE).read_text())
    assert stored["run_id"] == run.info.run_id
    # the model card job adds the held-out metrics to the same run: the model's and every
    # baseline's, named so that none is a folder of another in the file store
    card = {"model": {"method": "tybalt"}, "evaluation": {"split": "test", "metrics": [
        {"metric": "test_mse", "model": 0.25, "methods": {"tybalt": 0.25, "pca": 0.2}}],
        "replicates": [{"metric": "test_mse", "model_mean": 0.26}]}}
    assert tracking.log_evaluation(model.parent, model_card.tracked_metrics(card),
                                   config=config)
    logged_now = client.get_run(run.info.run_id).data.metrics
    assert logged_now["test/test_mse"] == 0.25
    assert logged_now["test/baseline/pca/test_mse"] == 0.2
    assert logged_now["test/mean_over_seeds/test_mse"] == 0.26
    # the current config decides: tracking off (or another store) logs nothing more
    assert not tracking.log_evaluation(model.parent, {"test/other": 1.0},
                                       config=run_config(tmp_path))
    # a store that fails is a warning, not a lost card
    broken = model.parent / tracking.RUN_FILE
    saved = broken.read_text()
    broken.write_text(saved.replace(run.info.run_id, "no-such-run"))
    assert not tracking.log_evaluation(model.parent, {"test/other": 1.0})
    broken.write_text(saved)
    # a resumed (rerun) job logs into its own run, not a new one
    again = tracking.Tracker(config, "tybalt", model.parent, {"seed": 1}, {})
    assert again.run_id == run.info.run_id


def test_tensorboard_writes_event_files_per_model_and_seed(expression_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = run_config(tmp_path, backend="tensorboard")
    model = train(expression_data, config, tmp_path / "tybalt")
    folder = tmp_path / "results" / "trk" / "tensorboard" / "tybalt" / "seed0"
    events = EventAccumulator(str(folder))
    events.Reload()
    assert "train_total" in events.Tags()["scalars"], events.Tags()
    assert tracking.log_evaluation(model.parent, {"test/test_mse": 0.5})


def test_tracking_off_writes_nothing_and_a_missing_backend_names_the_extra(
        expression_data, tmp_path, monkeypatch):
    model = train(expression_data, run_config(tmp_path), tmp_path / "tybalt")
    assert not (model.parent / tracking.RUN_FILE).exists()
    assert not (tmp_path / "results").exists()
    assert not tracking.log_evaluation(model.parent, {"test/x": 1.0})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    with pytest.raises(MedgenInputError, match=r"'tracking.backend' asks for mlflow, which "
                       r"is not installed: install the tracking extra"):
        tracking.Tracker(run_config(tmp_path, backend="mlflow"), "tybalt", tmp_path / "m",
                         {"seed": 0}, {})
    with pytest.raises(MedgenInputError, match="tracking.backend"):
        run_config(tmp_path, backend="wandb")
    # a store MLflow cannot open is refused with the config, not mid-run
    with pytest.raises(MedgenInputError, match=r"'tracking.uri' is 'ftp://example.invalid/x'; "
                       "expected an MLflow tracking URI"):
        run_config(tmp_path, backend="mlflow", uri="ftp://example.invalid/x")
    assert run_config(tmp_path, backend="mlflow", uri="http://localhost:5000")
    assert run_config(tmp_path, backend="mlflow", uri="postgresql+psycopg2://u@h/db")
    with pytest.raises(MedgenInputError, match="'tracking.experiment' names an MLflow"):
        run_config(tmp_path, backend="tensorboard", experiment="x")
