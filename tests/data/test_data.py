"""fastcnn.data: shapes, value ranges, deterministic splits, and nothing fetched from the network."""
import socket

import pytest
import torch

import importlib

from fastcnn import data

# the modules (fastcnn.data.digits the name is the loader function)
digits_mod, images_mod, lfw_mod = (importlib.import_module(f"fastcnn.data.{m}") for m in ("digits", "images", "lfw"))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a data loader tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for cached in (digits_mod._images, lfw_mod._images, images_mod._load):
        cached.cache_clear()


def test_digits_shapes_ranges_and_split_sizes(no_network):
    s = data.digits(size=28, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (1079, 359, 359)
    x, y = s.train[:]
    assert x.shape == (1079, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(y.tolist()) == set(range(10))
    assert data.digits(size=8, channels=3).test[0][0].shape == (3, 8, 8)


def test_digits_splits_are_deterministic_and_disjoint(no_network):
    a, b, c = data.digits(seed=3), data.digits(seed=3), data.digits(seed=4)
    assert torch.equal(a.train[:][0], b.train[:][0]) and torch.equal(a.test[:][1], b.test[:][1])
    assert not torch.equal(a.train[:][0], c.train[:][0])
    idx = data.split_indices(100, seed=1)
    joined = torch.cat(idx)
    assert sorted(joined.tolist()) == list(range(100)) and [len(i) for i in idx] == [60, 20, 20]


def test_digits_binary_is_zero_vs_one(no_network):
    s = data.digits_binary((0, 1))
    ys = torch.cat([s.train[:][1], s.val[:][1], s.test[:][1]])
    assert set(ys.tolist()) == {0, 1} and len(ys) == 360


def test_lfw_faces_labels_and_shape(no_network):
    s = data.lfw_faces(size=32, seed=0)
    x, y = s.train[:]
    assert x.shape[1:] == (1, 32, 32) and len(s.train) + len(s.val) + len(s.test) == 200
    ys = torch.cat([y, s.val[:][1], s.test[:][1]])
    assert (ys == 1).sum() == 100 and (ys == 0).sum() == 100


def test_image_patches_are_fixed_by_the_seed(no_network):
    ims = data.sample_images(("camera", "coins"))
    a, b = data.ImagePatches(ims, 17, 50, seed=5), data.ImagePatches(ims, 17, 50, seed=5)
    assert a[7].shape == (1, 17, 17) and torch.equal(a[7], b[7])
    assert not torch.equal(a[7], data.ImagePatches(ims, 17, 50, seed=6)[7])
    crops = data.random_crops(data.sample_images(("astronaut",), gray=False)[0], 24, 4)
    assert crops.shape == (4, 3, 24, 24)
    with pytest.raises(ValueError, match="patch"):
        data.ImagePatches(ims, 0, 5)
    with pytest.raises(ValueError, match="not a shipped image"):
        data.sample_images(("lily",))


def test_every_training_image_loads_offline_and_none_is_held_out(no_network):
    names = data.TRAIN_IMAGES + data.EXTRA_IMAGES
    for name, im in zip(names, data.sample_images(names)):
        assert im.ndim == 2 and min(im.shape) >= 128 and 0.0 <= im.min() < im.max() <= 1.0, name
    assert len(set(names)) == len(names)
    assert not set(names) & {"camera", "hubble_deep_field", "retina"}   # the held-out test images


def test_low_light_pairs_darken_and_are_deterministic(no_network):
    clean = data.ImagePatches(data.sample_images(("camera",)), 17, 20, seed=0)
    pairs = data.LowLightPairs(clean, seed=1)
    dark, ref = pairs[3]
    assert torch.equal(ref, clean[3]) and torch.equal(dark, pairs[3][0])
    assert dark.mean() < ref.mean() and 0 <= dark.min() and dark.max() <= 1
    poisson = data.LowLightPairs(clean, seed=1, noise="poisson")[3][0]
    assert not torch.equal(poisson, dark) and torch.all(poisson >= 0)
    x = torch.full((4, 4), 0.5)
    assert torch.allclose(data.darken(x, 2.0), torch.full((4, 4), 0.25))
    with pytest.raises(ValueError, match="noise"):
        data.darken(x, 2.0, noise="speckle")
