"""One in-mask intensity normaliser for the anomaly and synthesis tasks
(medgen.data.imaging.intensity), and the anomaly task's use of it (MaskedNormalised)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgen.data.imaging import intensity
from medgen.data.imaging.transforms import IMAGE, MASK, MaskedNormalised
from medgen.errors import MedgenInputError


def _reference_percentile(image: torch.Tensor, inside: torch.Tensor, lower: float,
                          upper: float) -> torch.Tensor:
    """The anomaly task's percentile scaling as it was written before the normalisers
    were merged (quantiles of the in-mask voxels, clip, scale): the numbers must not move."""
    values = image[inside]
    q = torch.quantile(values.double(), torch.tensor([lower, upper], dtype=torch.float64) / 100)
    low, high = float(q[0]), float(q[1])
    scaled = ((image - low) / max(high - low, 1e-6)).clamp(0, 1)
    return torch.where(inside, scaled, 0.0)


def test_percentile_is_bit_identical_to_the_former_anomaly_normaliser():
    rng = np.random.default_rng(0)
    image = torch.as_tensor(rng.gamma(2.0, 50.0, (2, 12, 10, 8)).astype(np.float32))
    mask = torch.zeros((1, 12, 10, 8), dtype=torch.uint8)
    mask[0, 2:10, 2:8, 1:7] = 1
    out = MaskedNormalised("percentile", 1.0, 99.0, [0, 80])({IMAGE: image.clone(),
                                                               MASK: mask})[IMAGE]
    for c in range(2):
        expected = _reference_percentile(image[c], mask[0].bool(), 1.0, 99.0)
        assert torch.equal(out[c], expected)


def test_percentile_params_invert_inside_the_clip_range():
    volume = np.linspace(0, 100, 64).reshape(4, 4, 4)
    mask = np.ones_like(volume, bool)
    params = intensity.fit(volume, mask, "percentile", percentiles=(10, 90))
    scaled = intensity.apply(volume, params, mask)
    assert scaled.min() == 0 and scaled.max() == 1
    inside = (volume >= params["low"]) & (volume <= params["high"])
    np.testing.assert_allclose(intensity.invert(scaled, params, mask)[inside], volume[inside],
                               rtol=1e-5)


def test_a_blank_image_is_refused_unless_allowed():
    blank, mask = np.full((4, 4), 7.0), np.ones((4, 4), bool)
    with pytest.raises(MedgenInputError, match="constant inside the mask"):
        intensity.fit(blank, mask, "percentile")
    params = intensity.fit(blank, mask, "percentile", allow_constant=True)
    assert params["high"] - params["low"] == pytest.approx(intensity.MIN_RANGE)
    assert (intensity.apply(blank, params, mask) == 0).all()


def test_none_keeps_the_stored_scale_inside_the_mask():
    # before the merge, 'none' on volumes fell through to the percentile scaling
    image = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4) * 10
    mask = torch.zeros((1, 2, 3, 4), dtype=torch.uint8)
    mask[0, 1] = 1
    out = MaskedNormalised("none", 1.0, 99.0, [0, 80])({IMAGE: image.clone(), MASK: mask})[IMAGE]
    assert torch.equal(out[0, 1], image[0, 1]) and (out[0, 0] == 0).all()


def test_the_synthesis_names_work_for_anomaly_images_too():
    image = torch.as_tensor(np.random.default_rng(1).uniform(1, 5, (1, 6, 6, 6)),
                            dtype=torch.float32)
    mask = torch.ones((1, 6, 6, 6), dtype=torch.uint8)
    for method in ("p99", "brasyn", "zscore"):
        out = MaskedNormalised(method, 1.0, 99.0, [0, 80])({IMAGE: image.clone(),
                                                            MASK: mask})[IMAGE]
        params = intensity.fit(image[0], mask[0], method)
        np.testing.assert_array_equal(out[0].numpy(),
                                      intensity.apply(image[0], params, mask[0]))
