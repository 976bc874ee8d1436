"""Objects are freed: repeated create/free keeps the process size flat."""
import gc
import os

import numpy as np
import pytest

import paligemma
from paligemma import Image, Session

from conftest import under_asan


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def growth_kib(step, warmup, rounds):
    for _ in range(warmup):
        step()
    gc.collect()
    before = rss_kib()
    for _ in range(rounds):
        step()
    gc.collect()
    return rss_kib() - before


@pytest.fixture(autouse=True)
def _no_asan():
    if under_asan():
        pytest.skip("RSS is meaningless under ASan (its quarantine keeps freed memory); "
                    "ASan checks the C side for leaks in the C tests")


def test_image_create_free_does_not_grow():
    pixels = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    def step():
        with Image.from_array(pixels) as img:
            img.to_array()

    # 300 rounds of a 0.9 MB image: a leak would add ~270 MB; allow 8 MB of allocator noise.
    assert growth_kib(step, 30, 300) < 8 * 1024


def test_model_and_session_create_free_does_not_grow(tiny_dir, model_images):
    image = os.path.join(model_images, "coffee.png")

    def step():
        model = paligemma.Model(tiny_dir, threads=1)
        session = Session(model)
        session.generate("caption en", image=image, max_new_tokens=2)
        model.close()  # either order: the session holds the model
        session.close()

    # The tiny model's weights are mapped (~5 MB) and its session state is several hundred
    # KB: 60 leaked rounds would add well over 30 MB. Allow 8 MB of allocator noise.
    assert growth_kib(step, 10, 60) < 8 * 1024


def test_dropping_references_frees(tiny_dir):
    def step():
        model = paligemma.Model(tiny_dir, threads=1)
        Session(model)  # freed by garbage collection, no close()
        del model

    assert growth_kib(step, 10, 60) < 8 * 1024
