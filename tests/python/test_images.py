"""Every image input of set_image (path, bytes, PIL, numpy) gives the same pixels and ids."""
import os

import numpy as np
import pytest

from paligemma import Image, Session

PIL = pytest.importorskip("PIL.Image")


def test_inputs_give_the_same_pixels(model_images):
    path = os.path.join(model_images, "cat_chelsea.png")
    with open(path, "rb") as f:
        data = f.read()
    pil = PIL.open(path)
    pil.load()
    arr = np.asarray(pil.convert("RGB"))
    with Image.open(path) as a, Image.from_bytes(data) as b, Image.from_pil(pil) as c, \
            Image.from_array(arr) as d, Image(path) as e:
        ref = a.to_array()
        assert ref.shape == (pil.height, pil.width, 3) and a.size == pil.size
        assert np.array_equal(ref, arr)  # the library decodes PNG like Pillow
        for other in (b, c, d, e):
            assert np.array_equal(other.to_array(), ref)
        assert a.to_bytes() == ref.tobytes()


def test_array_layouts(model_images):
    arr = np.asarray(PIL.open(os.path.join(model_images, "coffee.png")).convert("RGB"))
    with Image.from_array(arr) as rgb:
        ref = rgb.to_array()
    rgba = np.dstack([arr, np.full(arr.shape[:2], 7, np.uint8)])
    with Image.from_array(rgba) as img:  # alpha dropped, like Pillow convert("RGB")
        assert np.array_equal(img.to_array(), ref)
    with Image.from_array(arr[::2, ::3]) as img:  # non-contiguous views are copied
        assert np.array_equal(img.to_array(), arr[::2, ::3])
    gray = arr[:, :, 1].copy()
    with Image.from_array(gray) as img:
        assert np.array_equal(img.to_array(), np.dstack([gray] * 3))


def test_preprocess_matches_golden(model_images):
    path = os.path.join(model_images, "cat_chelsea.png")
    golden = os.path.join(model_images, "tiny__image_cat_chelsea__pixel_values.npy")
    if not os.path.exists(golden):
        pytest.skip("no pixel_values golden at %s" % golden)
    want = np.load(golden)[0]
    with Image.open(path) as img:
        got = img.preprocess(want.shape[-1])
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 1e-6


def test_every_input_gives_the_same_generation(tiny_model, model_images):
    path = os.path.join(model_images, "synth_gradient_320x240.png")
    with open(path, "rb") as f:
        data = f.read()
    pil = PIL.open(path)
    inputs = {
        "path": path,
        "pathlib": __import__("pathlib").Path(path),
        "bytes": data,
        "bytearray": bytearray(data),
        "PIL": pil,
        "numpy": np.asarray(pil.convert("RGB")),
        "Image": Image.open(path),
    }
    results = {}
    with Session(tiny_model) as session:
        for name, source in inputs.items():
            session.set_image(source)
            session.generate("caption en", max_new_tokens=10)
            results[name] = session.output_ids
    inputs["Image"].close()
    for name, ids in results.items():
        assert ids == results["path"], name
