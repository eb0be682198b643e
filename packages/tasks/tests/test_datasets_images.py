"""Omniglot class counting, SetMNIST and CLEVR: real data where present, fixtures otherwise."""

from __future__ import annotations

import gzip
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from setwise.tasks.datasets import (
    CorruptDataError,
    MissingDataError,
    clevr,
    clevr_render,
    load,
    mnist,
    omniglot,
)
from setwise.tasks.datasets import cli as data_cli

# --- Omniglot ----------------------------------------------------------------------------


def test_omniglot_npz_counts_equal_provenance(data_dir, cache_dir):
    for part, (chars, images) in omniglot.COUNTS.items():
        x, classes = omniglot.load_images(part, data_dir, cache_dir)
        assert x.shape == (images, 32, 32) and x.dtype == np.uint8
        assert classes.max() + 1 == chars == (964 if part == "images_background" else 659)
    train = omniglot.load_omniglot("train", data_dir, cache_dir)
    valid = omniglot.load_omniglot("valid", data_dir, cache_dir)
    test = omniglot.load_omniglot("test", data_dir, cache_dir)
    assert (train.num_classes, valid.num_classes, test.num_classes) == (916, 48, 659)
    assert len(train.images) + len(valid.images) == 19_280 and len(test.images) == 13_180


def test_omniglot_sets_have_the_labelled_number_of_classes(data_dir, cache_dir):
    data = load("omniglot-counting", "test", data_dir, cache_dir=cache_dir)
    batch = data.sample(500, np.random.default_rng(0))
    assert batch.x.shape == (500, 16, 32, 32) and batch.x.dtype == np.float32
    assert batch.mask.all() and 0 <= batch.x.min() and batch.x.max() <= 1
    distinct = [len(set(row)) for row in batch.classes]
    np.testing.assert_array_equal(distinct, batch.label)
    assert set(batch.label.tolist()) == set(range(1, 11))
    first = next(data.batches(8, seed=3))
    again = next(data.batches(8, seed=3))
    np.testing.assert_array_equal(first.x, again.x)
    assert not np.array_equal(first.classes, next(data.batches(8, seed=4)).classes)


def write_omniglot_pngs(root, part, num_chars=12, per_char=3, seed=0):
    """A tiny Omniglot in the original layout: <part>/<alphabet>/<character>/*.png."""
    rng = np.random.default_rng(seed)
    white = np.ones((num_chars, per_char, 105, 105), bool)
    for c in range(num_chars):
        for k in range(per_char):
            r, col = rng.integers(10, 80, 2)
            white[c, k, r:r + 15, col:col + 4] = False
            alphabet = root / "omniglot" / part / f"Alphabet_{c // 6}"
            folder = alphabet / f"character{c % 6 + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(white[c, k]).save(folder / f"{c:04d}_{k + 1:02d}.png")
    return white


def test_omniglot_reads_the_original_png_folder_layout(tmp_path):
    white = write_omniglot_pngs(tmp_path, "images_background")
    write_omniglot_pngs(tmp_path, "images_evaluation", seed=1)
    images, classes, names = omniglot.read_png_folder(tmp_path / "omniglot" / "images_background")
    np.testing.assert_array_equal(images, white.reshape(-1, 105, 105))
    np.testing.assert_array_equal(classes, np.repeat(np.arange(12), 3))
    assert names[0] == "Alphabet_0/character01"
    assert omniglot.source("images_background", tmp_path).is_dir()
    with pytest.raises(CorruptDataError, match=r"images_background: corrupt; expected 964 "
                       r"characters and 19,280 images .* found 12 characters and 36 images"):
        omniglot.load_omniglot("train", tmp_path, tmp_path / "cache")
    train = omniglot.load_omniglot("train", tmp_path, tmp_path / "cache", check_counts=False)
    assert train.num_classes == 11 and train.images.shape == (33, 32, 32)
    batch = train.sample(20, np.random.default_rng(0))
    np.testing.assert_array_equal([len(set(r)) for r in batch.classes], batch.label)


def test_omniglot_download_fetches_and_unzips_the_official_zip(tmp_path, monkeypatch):
    write_omniglot_pngs(tmp_path / "src", "images_evaluation")
    source = tmp_path / "src" / "omniglot"
    with zipfile.ZipFile(tmp_path / "images_evaluation.zip", "w") as handle:
        for path in source.rglob("*.png"):
            handle.write(path, str(path.relative_to(source)))
    monkeypatch.setattr(omniglot, "URL", tmp_path.as_uri() + "/{}.zip")
    with pytest.raises(MissingDataError, match="download=True"):
        omniglot.load_omniglot("test", tmp_path / "data", tmp_path / "cache")
    test = omniglot.load_omniglot("test", tmp_path / "data", tmp_path / "cache", download=True,
                                  check_counts=False)
    assert test.num_classes == 12 and len(test) == 36
    assert (tmp_path / "data" / "omniglot" / "images_evaluation").is_dir()


def test_omniglot_png_and_npz_give_the_same_images(data_dir, tmp_path):
    stored = np.load(data_dir / "omniglot" / "images_evaluation.npz")["images"][:2, :2]
    for c in range(2):
        folder = tmp_path / "images_evaluation" / "Angelic" / f"character{c + 1:02d}"
        folder.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(stored[c, k]).save(folder / f"x_{k + 1:02d}.png")
    images, _, _ = omniglot.read_png_folder(tmp_path / "images_evaluation")
    np.testing.assert_array_equal(images, stored.reshape(-1, 105, 105))
    np.testing.assert_array_equal(omniglot.downsize(images), omniglot.downsize(
        stored.reshape(-1, 105, 105)))


def test_omniglot_missing_or_corrupt_files_are_named(tmp_path):
    with pytest.raises(MissingDataError, match="images_background.npz"):
        omniglot.load_omniglot("train", tmp_path, tmp_path)
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_evaluation.npz").write_bytes(b"not an npz")
    with pytest.raises(CorruptDataError, match="images_evaluation.npz"):
        omniglot.load_omniglot("test", tmp_path, tmp_path)


def truncated_copy(src, dst, fraction=0.5):
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    dst.write_bytes(data[:int(len(data) * fraction)])


def test_omniglot_truncated_or_partial_npz_is_refused_on_load_and_by_setwise_data(
        data_dir, tmp_path, capsys):
    src = data_dir / "omniglot" / "images_evaluation.npz"
    bad = tmp_path / "omniglot" / "images_evaluation.npz"
    truncated_copy(src, bad)
    with pytest.raises(CorruptDataError, match="images_evaluation.npz: corrupt"):
        omniglot.load_omniglot("test", tmp_path, tmp_path / "cache")
    assert omniglot.npz_problem(src, "images_evaluation") is None
    assert "not a readable npz" in omniglot.npz_problem(bad, "images_evaluation")
    np.savez_compressed(bad, images=np.ones((20, 20, 105, 105), bool))  # complete, too few
    with pytest.raises(CorruptDataError, match=r"images_evaluation.npz: corrupt; expected "
                       r"images \[659, 20, 105, 105\].*20 characters"):
        omniglot.load_omniglot("test", tmp_path, tmp_path / "cache")
    assert data_cli.main(["data", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "omniglot-counting    CORRUPT" in out
    assert "corrupt: 20 characters, 400 images; expected images [659, 20" in out


def test_omniglot_flipped_bytes_fail_the_zip_crc_on_load(data_dir, tmp_path):
    src = data_dir / "omniglot" / "images_evaluation.npz"
    data = bytearray(src.read_bytes())
    data[5000] ^= 0xFF
    data[5001] ^= 0xFF
    bad = tmp_path / "omniglot" / "images_evaluation.npz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="images_evaluation.npz: corrupt"):
        omniglot.load_omniglot("test", tmp_path, tmp_path / "cache")


# --- SetMNIST ----------------------------------------------------------------------------


def test_mnist_counts_and_checksums_equal_provenance(data_dir):
    for split, count in mnist.COUNTS.items():
        images, labels = mnist.load_mnist(split, data_dir)
        assert images.shape == (count, 28, 28) and labels.shape == (count,)
    prefixes = ("6bbc9ace", "a25bea73", "2646ac64", "27ae3e4e")
    for path, prefix in zip(mnist.paths(data_dir), prefixes):
        assert mnist.MD5[path.name].startswith(prefix)


def test_setmnist_follows_dspn(data_dir):
    train = load("setmnist", "train", data_dir)
    test = load("setmnist", "test", data_dir)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.points.sizes.max() == 342 == train.max_size
    images, _ = mnist.load_mnist("test", data_dir)
    keep = images[0] >= 34
    np.testing.assert_array_equal(mnist.dspn_pixel_mask(images[:1])[0], keep)
    rows, cols = np.nonzero(keep)
    np.testing.assert_allclose(test.points[0], np.stack([rows, cols], 1) / 27)
    assert 0 <= train.points.x.min() and train.points.x.max() <= 1
    batch, labels = next(test.batches(16, seed=1))
    assert batch.x.shape == (16, 342, 2) and batch.mask.shape == (16, 342)
    np.testing.assert_array_equal(batch.mask.sum(1), test.points.sizes[batch.indices])
    np.testing.assert_array_equal(labels, test.labels[batch.indices])
    first, stored = batch.x[0][batch.mask[0]], test.points[batch.indices[0]]
    assert not np.array_equal(first, stored)
    np.testing.assert_array_equal(first[np.lexsort(first.T[::-1])], stored)
    again, _ = next(test.batches(16, seed=1))
    np.testing.assert_array_equal(batch.x, again.x)
    seg, _ = next(test.batches(16, seed=1, form="segments"))
    assert seg.x.shape == (batch.mask.sum(), 2) and seg.num_sets == 16


def test_mnist_download_checks_the_standard_md5(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "URL", (data_dir / "mnist").as_uri() + "/")
    images, labels = mnist.load_mnist("test", tmp_path, download=True)
    assert images.shape == (10_000, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(
        p.name for p in mnist.paths(data_dir))
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setitem(mnist.MD5, "t10k-labels-idx1-ubyte.gz", "0" * 32)
    with pytest.raises(CorruptDataError, match="md5"):
        mnist.load_mnist("test", tmp_path, download=True)


def test_idx_reader_rejects_truncated_files(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x00" * 10)
    with pytest.raises(CorruptDataError, match="10000 data bytes"):
        mnist.read_idx(path)
    with pytest.raises(MissingDataError, match="t10k-images-idx3-ubyte.gz"):
        mnist.load_mnist("test", tmp_path)


# --- CLEVR -------------------------------------------------------------------------------


def write_clevr_fixture(root):
    """Two hand-made scenes in the official CLEVR v1.0 layout."""
    objects = [
        {"shape": "sphere", "size": "large", "material": "metal", "color": "red",
         "3d_coords": [0.0, 0.0, 0.7], "pixel_coords": [240, 160, 10.0], "rotation": 0.0},
        {"shape": "cube", "size": "small", "material": "rubber", "color": "brown",
         "3d_coords": [0.0, 0.0, 0.7], "pixel_coords": [240, 160, 10.0], "rotation": 10.0},
        {"shape": "cylinder", "size": "small", "material": "rubber", "color": "cyan",
         "3d_coords": [1.0, 2.0, 0.35], "pixel_coords": [100, 200, 9.0], "rotation": 5.0},
    ]
    scenes = [{"image_index": i, "image_filename": f"CLEVR_val_{i:06d}.png", "split": "val",
               "objects": objects[:2] if i == 0 else objects[2:],
               "directions": {"right": [1.0, 0.0, 0.0] if i == 0 else [0.6, 0.8, 0.0]}}
              for i in range(2)]
    (root / "scenes").mkdir(parents=True)
    (root / "images" / "val").mkdir(parents=True)
    (root / "scenes" / "CLEVR_val_scenes.json").write_text(
        json.dumps({"info": {"version": "1.0"}, "scenes": scenes}))
    for i in range(2):
        rgba = np.full((320, 480, 4), 255, np.uint8)
        rgba[..., 0] = 60 * i
        Image.fromarray(rgba, "RGBA").save(root / "images" / "val" / f"CLEVR_val_{i:06d}.png")


def test_clevr_official_layout_gives_dspn_targets(tmp_path):
    root = tmp_path / "CLEVR_v1.0"
    write_clevr_fixture(root)
    data = load("clevr", "val", tmp_path, cache_dir=tmp_path / "cache")
    assert data.images.shape == (2, 128, 128, 3) and not data.synthetic
    assert data.images[1, 0, 0].tolist() == [60, 255, 255]
    assert data.mask.sum(1).tolist() == [2, 1]
    sphere = data.state[0, 0]
    np.testing.assert_allclose(sphere[:3], [0, 0, 0.7 / 3])
    assert sphere[3:].tolist() == [0, 1] + [0, 0, 0, 0, 1, 0, 0, 0] + [1, 0, 0] + [1, 0]
    h = 6.9 * 0.7 * 15 / 2
    np.testing.assert_allclose(data.boxes[0, 0], [(240 - h) / 480, (160 - h) / 320,
                                                  (240 + h) / 480, (160 + h) / 320], rtol=1e-6)
    c = h * 1.3
    np.testing.assert_allclose(data.boxes[0, 1], [(240 - c) / 480, (160 - c) / 320,
                                                  (240 + c) / 480, (160 + c) / 320], rtol=1e-6)
    assert not data.state[0, 2:].any() and not data.boxes[1, 1:].any()
    # DSPN rotates y with the already rotated x: y1 = (0.6 + 1.6) * -0.8 + 2 * 0.6 = -0.56
    height = 6.9 * 0.35 * (15 + 0.56) / 2
    box = clevr.object_box({"shape": "sphere", "pixel_coords": [100, 200, 9.0],
                            "3d_coords": [1.0, 2.0, 0.35]}, [0.6, 0.8, 0.0])
    np.testing.assert_allclose(box, [(100 - height) / 480, (200 - height) / 320,
                                     (100 + height) / 480, (200 + height) / 320])
    images, targets = next(data.batches(2, target="box", shuffle=False))
    assert images.dtype == np.float32 and images.max() <= 1 and targets.x.shape == (2, 10, 4)


def test_clevr_errors_name_the_missing_or_bad_file(tmp_path):
    with pytest.raises(MissingDataError, match="CLEVR_train_scenes.json"):
        load("clevr", "train", tmp_path)
    root = tmp_path / "CLEVR_v1.0"
    write_clevr_fixture(root)
    (root / "images" / "val" / "CLEVR_val_000001.png").unlink()
    with pytest.raises(MissingDataError, match="CLEVR_val_000001.png"):
        load("clevr", "val", tmp_path, cache_dir=tmp_path)
    scenes = json.loads((root / "scenes" / "CLEVR_val_scenes.json").read_text())
    scenes["scenes"][0]["objects"][0]["color"] = "pink"
    (root / "scenes" / "CLEVR_val_scenes.json").write_text(json.dumps(scenes))
    with pytest.raises(CorruptDataError, match="pink"):
        load("clevr", "val", tmp_path, cache_dir=tmp_path)


def test_synthetic_clevr_renderer_writes_the_official_layout(tmp_path):
    root = clevr_render.write_clevr(tmp_path, num_train=4, num_val=2, seed=7, progress=False)
    assert sorted(p.name for p in (root / "images" / "train").iterdir())[0] == \
        "CLEVR_train_000000.png"
    for split, count in (("train", 4), ("val", 2)):
        data = clevr.load_clevr(split, root=root, cache_dir=tmp_path / "c", progress=False)
        assert len(data) == count and data.synthetic
        assert ((data.mask.sum(1) >= 3) & (data.mask.sum(1) <= 10)).all()
        assert np.allclose(data.state[data.mask][:, 3:].sum(1), 4)
        centers = (data.boxes[..., :2] + data.boxes[..., 2:]) / 2
        assert ((centers > -0.1) & (centers < 1.1))[data.mask].all()
    again = clevr_render.write_clevr(tmp_path / "again", 4, 2, seed=7, progress=False)
    for name in ("CLEVR_train_000003.png", "CLEVR_val_000001.png"):
        split = name.split("_")[1]
        a = np.asarray(Image.open(root / "images" / split / name))
        b = np.asarray(Image.open(again / "images" / split / name))
        np.testing.assert_array_equal(a, b)
    image = np.asarray(Image.open(root / "images" / "train" / "CLEVR_train_000000.png"))
    assert image.shape == (320, 480, 3) and image.std() > 5
