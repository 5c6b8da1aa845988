"""The synthesis section of the report: metric table, mid-slices and training curves, on a
fake evaluation folder of tiny synthetic volumes."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgen.data.imaging import intensity
from medgen.errors import MedgenInputError
from medgen.tasks.synthesis import figures
from medgen.tasks.synthesis.prepare import crop, load_subject, read_manifest, uncrop
from tests.helpers.synthesis_data import prepared_folder

METHODS = ["context_gan_level1", "context_gan_level2", "voxel_linear", "unet_l1"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The tiny prepared folder, its test subject's box moved inside a larger grid (the
    tiny brains fill their whole volume; BraTS brains do not)."""
    folder = prepared_folder(tmp_path_factory.mktemp("synthesis"))
    manifest = read_manifest(folder)
    info = manifest["subjects"]["s3"]
    info["box"] = [[3 + a, 3 + b] for a, b in info["box"]]
    info["shape"] = [s + 9 for s in info["shape"]]
    (folder / "pairs.json").write_text(json.dumps(manifest))
    return folder


def metrics_rows(subjects, split=None):
    rng = np.random.default_rng(0)
    rows = []
    for subject in subjects:
        for method in METHODS:
            row = {"subject": subject, "method": method, "data_range": 1.0, "n_voxels": 10,
                   **{m: float(rng.random()) for m in figures.METRICS}}
            rows.append({**({"split": split} if split else {}), **row})
    return rows


def fake_eval(root, prepared, subject="s3", units=None):
    """An evaluation folder: metrics.tsv and full-grid volumes of two levels and one
    baseline (none for unet_l1), each the target plus a known offset."""
    manifest = read_manifest(prepared)
    info = manifest["subjects"][subject]
    target = load_subject(prepared, subject)["target"][0]
    eval_dir = root / "eval"
    offsets = {"context_gan_level1": 0.3, "context_gan_level2": 0.1, "voxel_linear": 0.5}
    for method, offset in offsets.items():
        name = (f"context_gan/{subject}_level{method[-1]}" if method.startswith("context")
                else f"{method}/{subject}")
        volume = uncrop(target + offset, info["box"], info["shape"])
        path = eval_dir / f"{name}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(volume, np.asarray(info["affine"])), path)
        path.with_name(path.name.split(".")[0] + ".json").write_text(
            json.dumps({"units": units or "normalised"}))
    pd.DataFrame(metrics_rows([subject])).to_csv(eval_dir / "metrics.tsv", sep="\t",
                                                 index=False)
    return eval_dir, offsets


def test_metric_table_keeps_the_report_metrics_and_adds_means_per_method(tmp_path):
    rows = metrics_rows(["b", "a"])
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.tsv", sep="\t", index=False)
    out = figures.metric_table(tmp_path / "metrics.tsv", tmp_path / "table.tsv")
    assert list(out.columns) == ["subject", "method", *figures.METRICS]
    assert list(out["subject"]) == ["a"] * 4 + ["b"] * 4 + [figures.MEAN] * 4
    assert list(out["method"][:4]) == METHODS  # the evaluation's order, not alphabetical
    means = out[out["subject"] == figures.MEAN].set_index("method")
    expected = pd.DataFrame(rows).groupby("method")["psnr"].mean()
    np.testing.assert_allclose(means.loc[METHODS, "psnr"], expected[METHODS], atol=1e-12)
    written = pd.read_csv(tmp_path / "table.tsv", sep="\t")
    assert len(written) == 12 and "data_range" not in written


def test_metric_table_means_each_split_apart(tmp_path):
    rows = metrics_rows(["v"], split="val") + metrics_rows(["t1", "t2"], split="test")
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.tsv", sep="\t", index=False)
    out = figures.metric_table(tmp_path / "metrics.tsv", tmp_path / "table.tsv")
    means = out[out["subject"] == figures.MEAN]
    assert list(out.columns[:3]) == ["split", "subject", "method"]
    assert sorted(means["split"].unique()) == ["test", "val"] and len(means) == 8
    val_mean = means[(means["split"] == "val") & (means["method"] == "voxel_linear")]
    val_row = [r for r in rows if r["split"] == "val" and r["method"] == "voxel_linear"][0]
    assert val_mean["ssim"].item() == pytest.approx(val_row["ssim"])


def test_metric_table_refuses_a_table_without_the_metrics(tmp_path):
    pd.DataFrame([{"subject": "a", "method": "m", "psnr": 1.0}]).to_csv(
        tmp_path / "metrics.tsv", sep="\t", index=False)
    with pytest.raises(MedgenInputError, match="lacks the column.*ssim"):
        figures.metric_table(tmp_path / "metrics.tsv", tmp_path / "table.tsv")
    with pytest.raises(MedgenInputError, match="do not exist"):
        figures.metric_table(tmp_path / "nothing.tsv", tmp_path / "table.tsv")


@pytest.mark.parametrize("units", [None, "HU"])
def test_outputs_are_read_back_into_the_prepared_box(prepared, tmp_path, units):
    eval_dir, offsets = fake_eval(tmp_path, prepared, units=units)
    info = read_manifest(prepared)["subjects"]["s3"]
    arrays = load_subject(prepared, "s3")
    mask, target = arrays["mask"][0], arrays["target"][0]
    levels = {"context_gan_level1": ("context_gan", 1), "context_gan_level2": ("context_gan", 2)}
    outputs = figures.subject_outputs(eval_dir, METHODS, "s3", levels, info, mask)
    assert list(outputs) == METHODS[:3]  # unet_l1 wrote no volume
    for method, volume in outputs.items():
        assert volume.shape == target.shape
        if units == "HU":  # normalised again with the target's parameters
            raw = crop(uncrop(target + offsets[method], info["box"], info["shape"]),
                       info["box"])
            expected = intensity.apply(raw, info["target_params"], mask)
            np.testing.assert_allclose(volume, expected, atol=1e-5)
        else:
            np.testing.assert_allclose(volume, target + offsets[method], atol=1e-6)


def test_mid_slices_draw_a_row_per_method_and_refuse_other_shapes(tmp_path):
    rng = np.random.default_rng(0)
    shape = (12, 14, 10)
    source, target = rng.random(shape), rng.random(shape)
    mask = np.zeros(shape, np.uint8)
    mask[2:10, 3:12, 2:9] = 1
    figures.mid_slices(source, target, {"a": target + 0.1}, mask, tmp_path / "one.png")
    figures.mid_slices(source, target, {"a": target + 0.1, "b": target, "c": source}, mask,
                       tmp_path / "three.png", title="s")
    one, three = Image.open(tmp_path / "one.png"), Image.open(tmp_path / "three.png")
    assert three.size[1] > 1.5 * one.size[1]  # 4 rows against 2
    with pytest.raises(MedgenInputError, match="one shape"):
        figures.mid_slices(source, target, {"a": target[:-1]}, mask, tmp_path / "x.png")
    with pytest.raises(MedgenInputError, match="mask is empty"):
        figures.mid_slices(source, target, {}, np.zeros(shape), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_training_curves_draw_the_levels_that_left_a_log(tmp_path):
    log = tmp_path / "level1" / "metrics.csv"
    log.parent.mkdir()
    pd.DataFrame({"epoch": [0, 0, 1, 1], "step": [1, 1, 3, 3],
                  "l2": [0.2, None, 0.1, None], "gdl": [0.3, None, 0.2, None],
                  "val_mae": [None, 0.4, None, 0.3]}).to_csv(log, index=False)
    drawn = figures.training_curves({"g_level1": log, "g_level2": tmp_path / "none.csv"},
                                    tmp_path / "curves.png")
    assert drawn == ["g_level1"]
    assert Image.open(tmp_path / "curves.png").size[0] > 0
    assert figures.training_curves({"g_level2": tmp_path / "none.csv"},
                                   tmp_path / "empty.png") == []
    assert (tmp_path / "empty.png").exists()


def test_synthesis_report_writes_table_slices_and_curves(prepared, tmp_path):
    eval_dir, _ = fake_eval(tmp_path, prepared)
    models = {"context_gan": [str(tmp_path / f"models/level{k}/model.pt") for k in (1, 2)]}
    log = tmp_path / "models/level1/metrics.csv"
    log.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [0, 1], "l2": [0.2, 0.1]}).to_csv(log, index=False)
    written = figures.synthesis_report(eval_dir, prepared, models, tmp_path / "report")
    assert sorted(written) == ["curves", "slices_s3", "table"]
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 0
    with pytest.raises(MedgenInputError, match="'nobody' is not in the prepared folder"):
        figures.synthesis_report(eval_dir, prepared, models, tmp_path / "r2", ["nobody"])
