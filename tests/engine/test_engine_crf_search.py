"""The CRF parameter search: the batched iteration equals mean_field's, the split is fixed, selection is honest."""

from __future__ import annotations

import numpy as np
import pytest

from engine.segmentation.crf.meanfield import ImageKernels, mean_field
from engine.segmentation.crf.search import (
    Candidate,
    grid,
    is_validation,
    refine_many,
    select,
    shortlist,
    split_fit,
)


def _scene(seed: int = 0, h: int = 24, w: int = 32, classes: int = 6):
    """Two coloured regions and weak unaries; class 1 is likely nowhere but wins some pixels, so with
    min_probability 0.45 it sends no messages yet still counts in every softmax and in the labels."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2 :] = 2
    image = np.where(truth[..., None] == 0, [200.0, 40, 40], [40.0, 40, 200]) + rng.normal(0, 5, (h, w, 3))
    unaries = rng.normal(0, 0.3, (classes, h, w))
    unaries[0] += 1.0 * (truth == 0)
    unaries[2] += 1.0 * (truth == 2)
    unaries[1] += 0.6
    return image.clip(0, 255).astype(np.uint8), unaries.astype(np.float32)


@pytest.mark.parametrize("min_probability", [0.0, 0.01, 0.45])
def test_batched_refinement_gives_mean_field_labels(min_probability: float) -> None:
    image, unaries = _scene()
    weights = [(0.0, 1.0), (1.0, 2.0), (3.0, 5.0), (0.5, 0.5), (2.0, 0.0)]
    kernels = ImageKernels.build(image, 20.0, 10.0, 3.0)
    batched = refine_many(unaries, kernels, weights, 10, min_probability)
    assert batched.shape == (len(weights), *unaries.shape[1:])
    changed = rest_wins = 0
    for (w_s, w_b), labels in zip(weights, batched, strict=True):
        params = Candidate(w_s, w_b, 20.0, 10.0).params(unaries.shape[0])
        q, _ = mean_field(unaries, image, params, 10, kernels=kernels, min_probability=min_probability)
        reference = q.argmax(0)
        assert (labels == reference).mean() > 0.998, (w_s, w_b)
        changed += int((reference != unaries.argmax(0)).sum())
        rest_wins += int((reference == 1).sum())
    assert changed > 0 and rest_wins > 0  # the CRF did something, and class 1 keeps pixels: not trivial


def test_grid_groups_candidates_by_thetas() -> None:
    points = grid([0, 1], [1, 2, 4], [60, 160], [3, 13])
    assert len(points) == 2 * 3 * 2 * 2 and len(set(points)) == len(points)
    thetas = [(c.theta_alpha, c.theta_beta) for c in points]
    assert thetas == sorted(thetas, key=lambda t: [(60, 3), (60, 13), (160, 3), (160, 13)].index(t))


def test_fit_split_depends_on_the_name_alone() -> None:
    names = [f"coco128-voc/{i:012}" for i in range(200)] + ["labelme-voc/a", "labelme-voc/b"]
    train, validation = split_fit(names)
    assert sorted(train + validation) == list(range(len(names))) and not set(train) & set(validation)
    assert 70 < len(validation) < 130  # about half
    reversed_train, reversed_validation = split_fit(names[::-1])
    assert {names[::-1][i] for i in reversed_validation} == {names[i] for i in validation}
    assert all(is_validation(names[i]) for i in validation)


def test_selection_uses_fit_validation_only() -> None:
    a, b, c, d = (Candidate(0, w, 80, 5) for w in (1, 2, 3, 4))
    train = {a: 60.0, b: 59.0, c: 58.0, d: 10.0}
    listed = shortlist(train, 3)
    assert listed == [a, b, c]  # d is out on fit-train
    validation = {a: 50.0, b: 52.0, c: 51.0}
    assert select(validation) == b  # not a, the best on fit-train
    assert select({a: 52.0, b: 52.0}) == a  # a tie goes to the weaker CRF


def test_recorded_command_leaves_out_the_output_path() -> None:
    from engine.segmentation.crf.fit import _without_out

    argv = ["--data", "d", "--out", "/tmp/x.npz", "--shortlist", "3", "--out=/y.npz"]
    assert _without_out(argv) == ["--data", "d", "--shortlist", "3"]


def test_fit_photos_split_into_train_and_validation_only(tmp_path) -> None:
    from PIL import Image

    from engine.segmentation.crf.fit import split

    for name, count in (("coco128-voc", 12), ("labelme-voc", 3), ("voc2012-val", 2)):
        for kind in ("images", "masks"):
            (tmp_path / name / kind).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (4, 4)).save(tmp_path / name / "images" / f"{i:03}.jpg")
            Image.new("L", (4, 4)).save(tmp_path / name / "masks" / f"{i:03}.png")
    sets = {key: [s.name for s in value] for key, value in split(tmp_path).items()}
    assert sorted(sets["fit-train"] + sets["fit-validation"]) == sorted(sets["fit"])
    assert sets["fit-train"] and sets["fit-validation"] and not set(sets["fit-train"]) & set(sets["fit-validation"])
    held = set(sets["coco-held"]) | set(sets["voc-held"])
    assert not held & set(sets["fit"])


def test_written_selection_needs_to_beat_the_unaries_on_fit_validation(tmp_path) -> None:
    from engine.segmentation.crf.fit import write_selection
    from engine.segmentation.crf.learned import load_params
    from engine.segmentation.crf.search import NO_CRF

    strong, weak = Candidate(1, 4, 80, 5), Candidate(0, 1, 120, 8)
    train = ({strong: 60.0, weak: 55.0}, 50.0)
    argv = ["--data", "d", "--out", str(tmp_path / "p.npz")]
    listed = [strong, weak]
    picked = write_selection(tmp_path / "a.npz", 3, "m", argv, train, listed, ({strong: 48.0, weak: 51.0}, 50.0))
    assert picked == weak  # beats the unaries on fit-validation; fit-train's favourite does not
    params = load_params(tmp_path / "a.npz")
    assert params.thetas == (120.0, 8.0, 3.0) and np.allclose(params.bilateral_weights, np.eye(3))
    with np.load(tmp_path / "a.npz") as data:
        assert str(data["meta_command"]) == "python -m engine.segmentation.crf.fit search --data d"
    picked = write_selection(tmp_path / "b.npz", 3, "m", argv, train, listed, ({strong: 48.0, weak: 49.0}, 50.0))
    assert picked == NO_CRF and not load_params(tmp_path / "b.npz").bilateral_weights.any()
