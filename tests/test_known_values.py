"""Known values: what a working model must output on fixtures whose answer is obvious.

Range checks (``0 <= auroc <= 1``) hold for any output, right or wrong. These tests train
each model briefly on a tiny synthetic fixture where the right answer is known, and check
that answer:

- anomaly detection: normal images are Gaussian blobs; an anomalous image is a blob with a
  bright 8 x 8 square near a corner. Every anomaly family (after a few epochs on normals) and
  every baseline (PCA, the trivial scores, the covariate deviations) must score each such
  image above every normal one: AUROC exactly 1.
- expression latents: two groups of samples differ in 5 of 100 genes only, the other 95
  being uniform noise; the groups barely separate in the input space (silhouette 0.08), nor
  in the latent of a Tybalt trained for one epoch (1-NN accuracy 0.50-0.71, silhouette
  0.04-0.19 over seeds 0-2). A Tybalt trained for 30 epochs must separate them: k-NN
  accuracy 1 on the test split (silhouette 0.63-0.67 over seeds 0-7).
"""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from medgen import registry
from medgen.atomic import save_npz
from medgen.config import validate
from medgen.tasks.anomaly.evaluate import evaluate_anomaly
from medgen.tasks.anomaly.inference import score_anomalies
from medgen.tasks.anomaly.methods import TRIVIAL
from medgen.tasks.anomaly.outputs import read_scores
from medgen.tasks.anomaly.scorers import fit_pca
from medgen.tasks.expression.evaluate import encode_means, load_model
from medgen.tasks.expression.latent import latent_metrics
from medgen.train import train_model
from tests.conftest import make_expression

pytestmark = pytest.mark.usefixtures("quiet_warnings")  # Lightning's hints

TRAINING = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "max_epochs": None,
            "num_threads": 1, "progress_bar": False}

# -- anomaly detection -----------------------------------------------------------------------
SIZE, SQUARE = 16, 8  # 16 x 16 images (the networks need a power of two); 8 x 8 anomaly
N_TRAIN, N_NORMAL, N_ANOMALOUS = 128, 16, 4
ANOMALY_EPOCHS = 20  # every stage's epochs
# small networks, larger learning rates: a few seconds of CPU training each. With these, the
# anomalies' lowest score exceeded the normals' highest by 11 (AnoGAN) to 360 (conv AE)
# standard deviations of the normal scores, over fixture and training seeds 0-4
FAST = {
    "anogan": {"latent_dim": 8, "generator_channels": 8, "discriminator_channels": 8,
               "batch_size": 16, "lr_generator": 0.001, "lr_discriminator": 0.001,
               "score_steps": 50, "score_batch_size": 32},
    "fanogan": {"latent_dim": 8, "channels_base": 8, "batch_size": 16, "n_critic": 2,
                "lr": 0.001, "encoder_lr": 0.003},
    "convae": {"channels_base": 8, "bottleneck": 8, "batch_size": 16, "lr": 0.003},
}
# 'mask_fraction' scores the stored fraction of the slice inside the brain mask, not the
# image content: no image fixture can make it rank anything
IMAGE_SCORES = tuple(name for name in TRIVIAL if name != "mask_fraction")


def blob_images(n: int, seed: int, square: int = 0) -> np.ndarray:
    """(n, 1, SIZE, SIZE) Gaussian blobs in [0, 1] at random centres; with ``square``, a
    bright square of that side one pixel from the top-left corner (off the border, so that
    all four of its edges are in the image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    centres = rng.uniform(5, SIZE - 5, (n, 2))
    images = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 12)
    images[:, 1:1 + square, 1:1 + square] = 1.0
    return images[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def anomaly_data(tmp_path_factory):
    """train.npz: normals only; test.npz: N_NORMAL normals, then N_ANOMALOUS anomalies."""
    folder = tmp_path_factory.mktemp("anomaly")
    save_npz(folder / "train.npz", {"images": blob_images(N_TRAIN, seed=0),
                                    "y": np.zeros(N_TRAIN, np.int8)})
    images = np.concatenate([blob_images(N_NORMAL, seed=1),
                             blob_images(N_ANOMALOUS, seed=2, square=SQUARE)])
    n = len(images)
    save_npz(folder / "test.npz", {
        "images": images, "y": np.repeat([0, 1], [N_NORMAL, N_ANOMALOUS]).astype(np.int8),
        "subject": np.array([f"img{i}" for i in range(n)]), "index": np.arange(n)})
    return folder


def assert_anomalies_rank_first(scores: np.ndarray, y: np.ndarray, method: str) -> None:
    normal, anomalous = scores[y == 0], scores[y == 1]
    assert len(normal) == N_NORMAL and len(anomalous) == N_ANOMALOUS, method
    assert np.isfinite(scores).all(), (method, scores)
    assert anomalous.min() > normal.max(), (
        f"{method}: an obvious anomaly scores {anomalous.min():.6g}, below the highest "
        f"normal image ({normal.max():.6g}); anomalous {np.sort(anomalous)}, "
        f"normal {np.sort(normal)}")


@pytest.mark.parametrize("family", registry.names("anomaly"))
def test_trained_family_scores_an_obvious_anomaly_above_every_normal(family, anomaly_data,
                                                                     tmp_path):
    preset = registry.presets(family)["default"]
    hp = {**preset, **FAST.get(family, {})}
    hp = {k: ANOMALY_EPOCHS if k.endswith("epochs") else v for k, v in hp.items()}
    model = train_model(family, anomaly_data / "train.npz", hp, TRAINING, 0, tmp_path / family)
    # through the workflow's scoring: the per-image scores TSV it writes
    tsv = score_anomalies(family, model, anomaly_data / "test.npz", tmp_path / "scores", "test")
    scores = read_scores(tsv)
    assert_anomalies_rank_first(scores["score"], scores["y"], family)


def test_every_baseline_scores_an_obvious_anomaly_above_every_normal(anomaly_data, tmp_path):
    pca = fit_pca(anomaly_data / "train.npz", 5, tmp_path / "pca.npz")
    dirs = {}
    for method, model in (("pca", pca), *((name, None) for name in IMAGE_SCORES)):
        tsv = score_anomalies(method, model, anomaly_data / "test.npz", tmp_path / method,
                              "test")
        scores = read_scores(tsv)
        assert_anomalies_rank_first(scores["score"], scores["y"], method)
        dirs[method] = tmp_path / method
    # the evaluation's table: the same AUROC of 1, and the covariate deviations
    # (brightness, contrast, sharpness against the training images) rank them first too
    anomaly = validate({})["anomaly"]
    evaluate_anomaly(dirs, anomaly_data, anomaly, tmp_path / "report")
    rows = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    auroc = {row["method"]: row["auroc"] for row in rows if row["split"] == "test"}
    deviations = {f"{c}_deviation" for c in ("brightness", "contrast", "sharpness")}
    assert set(auroc) == {"pca", *IMAGE_SCORES, *deviations}
    assert auroc == {method: 1.0 for method in auroc}


# -- expression latents ----------------------------------------------------------------------
N_SAMPLES, N_GENES, N_MARKERS = 120, 100, 5


def two_cluster_expression(path, seed: int = 0) -> np.ndarray:
    """make_expression's samples and splits, with X replaced: group 0 and group 1 (even and
    odd samples) differ in the first N_MARKERS genes only (0.2 vs 0.8); the rest is uniform
    noise. Writes the h5ad; returns the group of each sample."""
    adata = make_expression(n=N_SAMPLES, n_genes=N_GENES, seed=seed)
    rng = np.random.default_rng(seed)
    group = np.arange(N_SAMPLES) % 2
    x = rng.uniform(0.1, 0.9, (N_SAMPLES, N_GENES))
    x[:, :N_MARKERS] = np.where(group[:, None] == 0, 0.2, 0.8) + rng.normal(
        0, 0.05, (N_SAMPLES, N_MARKERS))
    adata.X = np.clip(x, 0, 1).astype(np.float32)
    adata.write_h5ad(path)
    return group


def test_tybalt_latent_separates_a_two_cluster_fixture(tmp_path):
    group = two_cluster_expression(tmp_path / "two_clusters.h5ad")
    hp = registry.resolve_hparams("tybalt", "default", {
        "latent_dim": 2, "hidden_dim": 8, "batch_size": 16, "lr": 0.01, "max_epochs": 30})
    path = train_model("tybalt", str(tmp_path / "two_clusters.h5ad"), hp,
                       {**TRAINING, "max_epochs": 30}, 0, tmp_path / "tybalt")
    module, _ = load_model(path)
    adata = ad.read_h5ad(tmp_path / "two_clusters.h5ad")
    x = np.asarray(adata.X, np.float32)
    mu = encode_means(module, x, np.zeros((len(x), 0), np.float32))
    split = adata.obs["split"].to_numpy()
    train, test = split == "train", split == "test"
    # the evaluation's own metrics of a latent space (k-NN fitted on train, scored on test)
    metrics = latent_metrics(mu, {"group": group.astype(str).astype(object)}, train, test,
                             k=5)
    assert metrics["knn_accuracy_group"] == 1.0, metrics
    # and an independent look: 1-NN from train, and a clear silhouette over all samples
    predicted = KNeighborsClassifier(1).fit(mu[train], group[train]).predict(mu[test])
    assert (predicted == group[test]).all()
    assert silhouette_score(mu, group) > 0.4
