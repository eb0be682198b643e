"""CLEVR (paper 2, 5.2): DSPN's average precision on hand-made scenes, the data (pure in
(seed, step), the official layout), the ResNet34 layout and torchvision converter, and the
ImageNet stem across backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from setwise.tasks.clevr import data, metrics
from setwise.tasks.clevr.model import init_params_and_state, spec_from_config
from setwise.tasks.clevr.task import ClevrTask
from setwise.tasks.config import resolve
from setwise.tasks.layers import resnet as np_resnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# The metric ----------------------------------------------------------------------------------

BOXES = np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.7, 0.9], [0.2, 0.6, 0.4, 0.8]])


def box_scene(pred_rows, conf, gt=BOXES, slots=4):
    """One image: predicted rows (padded with far-away boxes of confidence 0) and targets."""
    pred = np.full((1, slots, 4), 5.0)
    pred[0, :, 2:] = 6.0
    confidence = np.zeros((1, slots))
    pred[0, :len(pred_rows)] = pred_rows
    confidence[0, :len(conf)] = conf
    target = np.zeros((1, slots, 4))
    target[0, :len(gt)] = gt
    return pred, confidence, target, np.arange(slots)[None] < len(gt)


def box_ap(*scene):
    return metrics.average_precision("boxes", *scene, metrics.BOX_THRESHOLDS)


def test_a_perfect_box_prediction_has_ap_one_at_every_threshold():
    got = box_ap(*box_scene(BOXES[[2, 0, 1]], [0.9, 0.8, 0.7]))
    assert got == {"ap50": 1.0, "ap60": 1.0, "ap70": 1.0, "ap80": 1.0, "ap90": 1.0}


def test_a_missing_object_lowers_recall():
    got = box_ap(*box_scene(BOXES[:2], [0.9, 0.8]))
    assert got["ap50"] == pytest.approx(2 / 3)


def test_confidences_order_the_detections():
    wrong = np.array([0.8, 0.1, 0.9, 0.2])     # overlaps nothing
    # the false positive first: precision 0, 1/2, 2/3, 3/4 at recall 0, 1/3, 2/3, 1
    first = box_ap(*box_scene(np.stack([wrong, *BOXES]), [0.95, 0.9, 0.8, 0.7]))
    assert first["ap50"] == pytest.approx(3 / 4)
    last = box_ap(*box_scene(np.stack([wrong, *BOXES]), [0.05, 0.9, 0.8, 0.7]))
    assert last["ap50"] == 1.0


def test_iou_thresholds_and_duplicates():
    shifted = BOXES[0] + np.array([0.0, 0.0, 0.0, 0.05])   # IoU 0.2*0.2 / (0.2*0.25) = 0.8
    assert metrics.iou(shifted, BOXES[0]) == pytest.approx(0.8)
    got = box_ap(*box_scene([shifted], [1.0], gt=BOXES[:1]))
    assert got["ap80"] == 1.0 and got["ap90"] == 0.0
    # a second detection of the same object is a false positive (after the true one)
    dup = box_ap(*box_scene([BOXES[0], BOXES[0]], [0.9, 0.8], gt=BOXES[:1]))
    assert dup["ap50"] == 1.0
    dup = box_ap(*box_scene([BOXES[0], BOXES[0]], [0.8, 0.9], gt=BOXES[:1]))
    assert dup["ap50"] == 1.0       # precision 1 at recall 1 either way: AP 1
    assert metrics.iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def state_row(coords, material=0, color=0, shape=0, size=0):
    row = np.zeros(18)
    row[:3] = np.asarray(coords) / 3
    row[3 + material] = row[5 + color] = row[13 + shape] = row[16 + size] = 1
    return row


def test_state_ap_needs_every_attribute_and_the_distance():
    gt = np.stack([state_row([1, 2, 0.35], 1, 4, 2, 0), state_row([-2, 0, 0.7], 0, 7, 1, 1)])
    target, mask = np.zeros((1, 3, 18)), np.array([[True, True, False]])
    target[0, :2] = gt
    thresholds = metrics.STATE_THRESHOLDS
    conf = np.array([[0.9, 0.8, 0.0]])
    perfect = metrics.average_precision("state", target + 0.0, conf, target, mask, thresholds)
    assert set(perfect.values()) == {1.0}
    assert list(perfect) == ["ap_inf", "ap_1", "ap_0.5", "ap_0.25", "ap_0.125"]
    # one object 0.4 away (in CLEVR units): found at inf, 1, 0.5; missed at 0.25, 0.125
    moved = target.copy()
    moved[0, 0, 0] += 0.4 / 3
    got = metrics.average_precision("state", moved, conf, target, mask, thresholds)
    assert got["ap_inf"] == got["ap_1"] == got["ap_0.5"] == 1.0
    # missed: a false positive first (precision 1/2 at recall 1/2), so AP 1/4
    assert got["ap_0.25"] == got["ap_0.125"] == pytest.approx(0.25)
    # ranked below the found object: precision 1 at recall 1/2, so AP 1/2
    got = metrics.average_precision("state", moved, conf[:, [1, 0, 2]], target, mask,
                                    thresholds)
    assert got["ap_0.25"] == got["ap_0.125"] == pytest.approx(0.5)
    # a wrong colour fails the match even at an infinite distance threshold
    recoloured = target.copy()
    recoloured[0, 1, 5:13] = np.eye(8)[3]
    got = metrics.average_precision("state", recoloured, conf, target, mask, (math.inf,))
    assert got["ap_inf"] == pytest.approx(0.5)


def test_detections_are_read_in_dspn_file_order_for_ties():
    # DSPN's script reads 0.txt, 1.txt, 10.txt, 2.txt, ...: equal confidences keep that order
    order = metrics.detection_order(11, 1, np.ones(11))
    assert order.tolist() == [0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9]
    assert metrics.detection_order(2, 2, [[0.1, 0.5], [0.5, 0.9]]).tolist() == [3, 1, 2, 0]


def test_ap_needs_a_ground_truth():
    pred, conf, target, mask = box_scene(BOXES[:1], [1.0])
    with pytest.raises(ValueError, match="at least one ground-truth"):
        box_ap(pred, conf, target, mask & False)


# The data ------------------------------------------------------------------------------------

def test_batches_are_pure_in_seed_and_step_and_labelled_synthetic():
    task = ClevrTask()
    config = resolve(task, "tiny", {"target": "state"})
    a, b = task.train_batch(config, 3), task.train_batch(config, 3)
    assert a.keys() == {"image", "x", "mask"}
    assert a["image"].shape == (2, 16, 16, 3) and a["image"].dtype == np.float32
    assert a["x"].shape == (2, 10, 18) and a["mask"].shape == (2, 10)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert 0 <= a["image"].min() and a["image"].max() <= 1
    assert (a["mask"].sum(1) >= 3).all() and not a["x"][~a["mask"]].any()
    other = [task.train_batch(config, s)["x"] for s in range(4, 10)]
    assert any(not np.array_equal(a["x"], o) for o in other)
    boxes = task.train_batch(dict(config, target="boxes"), 3)
    assert boxes["x"].shape == (2, 10, 4) and np.array_equal(boxes["image"], a["image"])
    assert data.load("train", *data.source_args(config)).synthetic
    assert [len(e["x"]) for e in task.eval_batches(config)] == [2, 2]


def test_resize_averages_pixel_blocks():
    images = np.arange(128 * 128 * 3, dtype=np.int64).reshape(1, 128, 128, 3) % 256
    small = data.resize(images.astype(np.uint8), 32)
    assert small.shape == (1, 32, 32, 3)
    assert small[0, 1, 2, 0] == pytest.approx(images[0, 4:8, 8:12, 0].mean() / 255)
    with pytest.raises(ValueError, match="divisor of 128"):
        data.check_image_size(48)


def test_the_paper_preset_reads_the_official_layout(tmp_path):
    from setwise.tasks.datasets.clevr_render import write_clevr

    write_clevr(tmp_path, num_train=2, num_val=1, seed=3, progress=False)
    task = ClevrTask()
    config = resolve(task, "paper", {"data_dir": str(tmp_path), "batch_size": 2,
                                     "eval_size": 1})
    batch = task.train_batch(config, 0)
    assert batch["image"].shape == (2, 128, 128, 3) and batch["x"].shape == (2, 10, 4)
    assert [b["mask"].shape for b in task.eval_batches(config)] == [(1, 10)]
    spec = spec_from_config(config)
    assert spec.encoder.body.blocks == (3, 4, 6, 3) and spec.head_size == 2


# ResNet34 and torchvision's weights -------------------------------------------------------

def torchvision_resnet34_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of torchvision's ``resnet34().state_dict()`` with its shape (written from
    torchvision/models/resnet.py: conv1, bn1, layer1..4 of BasicBlocks [3, 4, 6, 3], the
    first block of layers 2-4 with a 1x1 downsample + batch norm, fc 512 -> 1000)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(name, c):
        shapes.update({f"{name}.weight": (c,), f"{name}.bias": (c,),
                       f"{name}.running_mean": (c,), f"{name}.running_var": (c,),
                       f"{name}.num_batches_tracked": ()})

    bn("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), 1):
        for i in range(blocks):
            p = f"layer{layer}.{i}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes if i == 0 else planes, 3, 3)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            if i == 0 and layer > 1:
                shapes[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes)
        inplanes = planes
    shapes.update({"fc.weight": (1000, 512), "fc.bias": (1000,)})
    return shapes


def random_state_dict(seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in torchvision_resnet34_shapes().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g, dtype=torch.float64) * 0.1
    return out


def torchvision_features(sd, x):
    """torchvision's ResNet34 forward up to ``layer4`` (eval mode) on NCHW ``x``, written
    with ``torch.nn.functional`` on the state_dict."""
    import torch.nn.functional as F

    def bn(h, name):
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)

    h = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1"))
    h = F.max_pool2d(h, 3, 2, 1)
    for layer, blocks in enumerate((3, 4, 6, 3), 1):
        for i in range(blocks):
            p, stride = f"layer{layer}.{i}", 2 if (i == 0 and layer > 1) else 1
            out = F.relu(bn(F.conv2d(h, sd[f"{p}.conv1.weight"], stride=stride, padding=1),
                            f"{p}.bn1"))
            out = bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                h = bn(F.conv2d(h, sd[f"{p}.downsample.0.weight"], stride=stride),
                       f"{p}.downsample.1")
            h = F.relu(out + h)
    return h


def test_torchvision_weights_load_into_our_layout(tmp_path):
    """The converted weights give torchvision's features (the JAX twin of the layer family
    is held to the torch one by ``setwise check`` and the ImageNet-stem test below)."""
    import torch

    from setwise.tasks.layers.torch import resnet as torch_resnet

    sd = random_state_dict()
    path = tmp_path / "resnet34.pth"
    torch.save(sd, path)
    task = ClevrTask()
    config = resolve(task, "paper", {"encoder_weights": str(path), "image_size": 32})
    spec = spec_from_config(config)
    params, state = init_params_and_state(spec, 0, "float64", str(path))
    assert np.array_equal(params["enc_stem_w"], sd["conv1.weight"].numpy().transpose(2, 3, 1, 0))
    assert np.array_equal(state["enc_2_0_down_bn_var"], sd["layer3.0.downsample.1.running_var"])
    assert np.array_equal(params["enc_3_2_conv2_bn_offset"], sd["layer4.2.bn2.bias"])
    x = np.random.default_rng(0).random((2, 32, 32, 3))
    want = torchvision_features(sd, torch.as_tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    got, _ = torch_resnet.image_resnet({k: torch.as_tensor(v) for k, v in params.items()},
                                       {k: torch.as_tensor(v) for k, v in state.items()},
                                       "enc", spec.encoder, torch.as_tensor(x), False)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)


def test_the_converter_names_missing_unexpected_and_misshaped_keys():
    spec = np_resnet.resnet34()
    sd = {k: v.numpy() for k, v in random_state_dict().items()}
    names = np_resnet.torchvision_names("enc", spec)
    assert len(names) == len([k for k in sd if "num_batches" not in k and "fc." not in k])
    params, state = {}, {}
    np_resnet.init_image_resnet(np.random.default_rng(0), params, state, "enc", 3, spec)
    assert {n for _, n in names.values()} == set(params) | set(state)
    broken = dict(sd)
    del broken["layer3.5.bn2.running_var"]
    broken["layer5.0.conv1.weight"] = sd["layer4.0.conv1.weight"]
    with pytest.raises(ValueError, match=r"missing keys \['layer3.5.bn2.running_var'\], "
                                         r"unexpected keys \['layer5.0.conv1.weight'\]"):
        np_resnet.from_torchvision(broken, "enc", spec, params, state)
    narrow = np_resnet.resnet34(width=32)
    p2, s2 = {}, {}
    np_resnet.init_image_resnet(np.random.default_rng(0), p2, s2, "enc", 3, narrow)
    with pytest.raises(ValueError, match="conv1.weight has shape"):
        np_resnet.from_torchvision(sd, "enc", narrow, p2, s2)


def test_the_imagenet_stem_agrees_across_backends():
    """Stem (7x7/2 convolution, batch norm, 3x3/2 max-pool) and a block, float64: the same
    features, running statistics and parameter gradients in NumPy, torch and JAX."""
    import jax
    import jax.numpy as jnp
    import torch

    from setwise.tasks.layers.jax import resnet as jax_resnet
    from setwise.tasks.layers.torch import resnet as torch_resnet

    spec = np_resnet.resnet34(width=2, blocks=(1, 1))
    params, state = {}, {}
    np_resnet.init_image_resnet(np.random.default_rng(1), params, state, "enc", 3, spec,
                                "float64")
    x = np.random.default_rng(2).standard_normal((2, 16, 16, 3))
    want, want_state = np_resnet.image_resnet(params, state, "enc", spec, x, True)
    assert want.shape == (2, 2, 2, 4) and spec.out_size(16) == 2

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    y, t_state = torch_resnet.image_resnet(tp, {k: torch.as_tensor(v) for k, v in state.items()},
                                           "enc", spec, torch.as_tensor(x), True)
    (y ** 2).sum().backward()
    with jax.enable_x64(True):
        js = {k: jnp.asarray(v) for k, v in state.items()}

        def loss(p):
            out, new_state = jax_resnet.image_resnet(p, js, "enc", spec, jnp.asarray(x), True)
            return (out ** 2).sum(), (out, new_state)

        grads, (jy, j_state) = jax.grad(loss, has_aux=True)(
            {k: jnp.asarray(v) for k, v in params.items()})
        np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(jy), want, rtol=1e-10, atol=1e-12)
        for k in want_state:
            np.testing.assert_allclose(np.asarray(j_state[k]), want_state[k], rtol=1e-10)
            np.testing.assert_allclose(t_state[k].numpy(), want_state[k], rtol=1e-10)
        for k in params:
            np.testing.assert_allclose(tp[k].grad.numpy(), np.asarray(grads[k]), rtol=1e-9,
                                       atol=1e-11, err_msg=k)


def test_held_out_hungarian_set_loss_on_hand_made_sets():
    target, mask = np.array([[[0.0], [0.0]]]), np.array([[True, False]])
    # slot 0 -> the padding row (0, presence 0), slot 1 -> the object: matched by cost
    pred, presence = np.array([[[0.1], [0.5]]]), np.array([[0.0, 1.0]])
    # pairs: (0.5, 1) vs (0, 1): (0.125 + 0) / 2; (0.1, 0) vs (0, 0): (0.005 + 0) / 2
    want = (0.0625 + 0.0025) / 2
    assert metrics.hungarian_set_loss(pred, presence, target, mask) == pytest.approx([want])
    swapped = metrics.hungarian_set_loss(pred[:, ::-1], presence[:, ::-1], target, mask)
    assert swapped == pytest.approx([want])
    assert metrics.hungarian_set_loss(target, mask * 1.0, target, mask) == pytest.approx([0.0])


def test_the_page_tables_sit_beside_the_paper_and_judge_the_ordering():
    from types import SimpleNamespace

    from setwise.tasks.clevr import report

    def run(creator, seed, ap):
        ev = {"split": "eval", "step": 10, "set_loss": 0.1 - ap / 10,
              **{k: ap for k in report.BOX_KEYS}}
        return SimpleNamespace(config={"target": "boxes", "creator": creator, "seed": seed},
                               metrics=[ev])

    scores = {"mlp": 0.1, "iid": 0.3, "first_n": 0.2, "top_n": 0.4}
    runs = [run(c, s, a + 0.01 * s) for c, a in scores.items() for s in range(3)]
    text, finals = report.table(runs, "boxes")
    assert "| Top-n | ours (3 seeds) | 41 ± 1 |" in text and "97.3 ± 1.3" in text
    assert finals["iid"]["ap50"] == pytest.approx([30, 31, 32])
    sentence = report.ordering(finals, "boxes")
    assert "holds at this budget (Top-n and i.i.d. are the two best)" in sentence
    assert "Top-n 41 ± 1" in sentence
    state = report.ordering({c: {k: [v] * 3 for k, v in vals.items()}
                             for c, vals in finals.items() if c != "top_n"}, "state")
    assert "does not hold at this budget (best: i.i.d.)" in state
    zero = report.ordering({c: {"ap50": [0.0, 0.0], "set_loss": [1.0, 1.0]}
                            for c in scores}, "boxes")
    assert "cannot be judged" in zero
