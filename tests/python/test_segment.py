"""Segmentation masks from Python and the `pg segment` tool (issue 14): paligemma.MaskDecoder,
segment_answer and Session.segment against the NumPy float64 reference of tests/mask/vae_ref.py
on a random-weight npz in vae-oid.npz's layout; `pg segment --json` (COCO RLE decoded here),
--png-out and --overlay; `pg detect --overlay`.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import paligemma
from paligemma import MaskDecoder, PaliGemmaError, segment_answer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mask"))
import vae_ref  # noqa: E402

W, H = 320, 240
OBJECTS = [([100, 150, 800, 700], list(range(0, 128, 8)), "cat"),
           ([500, 0, 1000, 400], [3, 77] * 8, "dog")]


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    weights = vae_ref.random_vae(np.random.default_rng(141), dim=32)
    path = str(tmp_path_factory.mktemp("vae") / "vae-oid.npz")
    vae_ref.save_npz(path, weights)
    return path, weights


def rle_decode(rle):
    """COCO compressed RLE string -> HxW uint8 mask (the pycocotools format, decoded here
    from its description: 5-bit groups + 48, 0x20 = more, 0x10 of the last = sign, counts
    from the third on relative to two before, runs column-major starting with zeros)."""
    h, w = rle["size"]
    s, counts, i = rle["counts"], [], 0
    while i < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[i]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat = np.zeros(h * w, np.uint8)
    pos, val = 0, 0
    for c in counts:
        flat[pos:pos + c] = val
        pos += c
        val ^= 1
    assert pos == h * w
    return flat.reshape(w, h).T


def test_decoder_logits(vae):
    path, weights = vae
    with MaskDecoder(path) as dec:
        for _, codes, _ in OBJECTS:
            ref = vae_ref.decode(weights, codes)
            got = dec.logits(codes)
            assert got.shape == (64, 64) and got.dtype == np.float32
            assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
        with pytest.raises(PaliGemmaError) as info:
            dec.logits([128] * 16)
        assert "not in 0..127" in info.value.message
        with pytest.raises(PaliGemmaError):
            dec.logits([1] * 15)


def test_segment_answer(vae):
    path, weights = vae
    with MaskDecoder(path) as dec:
        segs, problem = segment_answer(vae_ref.answer(OBJECTS), W, H, dec)
        assert problem is None and len(segs) == 2
        for s, (loc, codes, label) in zip(segs, OBJECTS):
            assert s.label == label and s.loc == tuple(loc) and s.seg == tuple(codes)
            assert s.mask.shape == (H, W) and s.mask.dtype == bool
            own, _, bx = vae_ref.full_mask(s.logits, loc, W, H)
            assert s.mask_box == bx and np.array_equal(own.astype(bool), s.mask)
            assert s.mask.any()
        # a detect answer and a truncated segment answer: boxes without masks, a problem
        text = "<loc0000><loc0000><loc0512><loc0512> box ; " + vae_ref.answer(OBJECTS)[:60]
        segs, problem = segment_answer(text, W, H, dec)
        assert [s.mask for s in segs] == [None, None]
        assert problem.startswith("truncated object at byte 43")


def test_decoder_errors(tmp_path):
    with pytest.raises(PaliGemmaError) as info:
        MaskDecoder(str(tmp_path / "missing.npz"))
    assert info.value.status == paligemma.Status.NOT_FOUND
    bad = tmp_path / "bad.npz"
    np.savez(str(bad), x=np.zeros(3, np.float32))
    with pytest.raises(PaliGemmaError) as info:
        MaskDecoder(str(bad))
    assert "_vq_vae._embedding" in info.value.message


def _tool():
    tool = os.environ.get("PG_TOOL")
    if not tool:
        pytest.skip("PG_TOOL not set")
    return tool


def _png(path):
    from PIL import Image
    return np.asarray(Image.open(path))


def test_pg_segment_tool(vae, tmp_path, model_images):
    path, _ = vae
    image = os.path.join(model_images, "cat_chelsea.png")
    out_dir = tmp_path / "masks"
    out_dir.mkdir()
    overlay = tmp_path / "overlay.png"
    text = vae_ref.answer(OBJECTS) + " ; <loc0010><loc0010><loc0020><loc0020> plain"
    res = subprocess.run([_tool(), "segment", "--vae", path, "--answer", text, image, "--json",
                          "--png-out", str(out_dir), "--overlay", str(overlay)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["text"] == text and out["status"] == "ok"
    with paligemma.Image(image) as img:
        w, h = img.size
        pixels = img.to_array()
    with MaskDecoder(path) as dec:
        want, _ = segment_answer(text, w, h, dec)
    assert len(out["objects"]) == 3
    for i, (o, s) in enumerate(zip(out["objects"], want)):
        assert o["label"] == s.label and o["loc"] == list(s.loc)
        assert o["box"] == pytest.approx(list(s.box))
        assert o["box_normalized"] == pytest.approx([s.box[0] / w, s.box[1] / h,
                                                     s.box[2] / w, s.box[3] / h])
        if s.mask is None:
            assert o["mask"] is None and o["seg"] == []
            assert not (out_dir / ("mask_%d.png" % i)).exists()
            continue
        assert o["mask"]["size"] == [h, w] and o["mask_box"] == list(s.mask_box)
        assert np.array_equal(rle_decode(o["mask"]), s.mask.astype(np.uint8))
        png = _png(out_dir / ("mask_%d.png" % i))
        assert png.shape == (h, w) and np.array_equal(png, s.mask.astype(np.uint8) * 255)
    pic = _png(overlay)
    assert pic.shape == (h, w, 3)
    inside = want[0].mask
    assert (pic[inside] != pixels[inside]).any()  # masks are tinted
    far = np.zeros((h, w), bool)
    far[-2:, -2:] = True  # the bottom-right corner: no box, no mask
    far &= ~want[1].mask
    assert np.array_equal(pic[far], pixels[far])


def test_pg_segment_bad_vae(tmp_path, model_images):
    image = os.path.join(model_images, "cat_chelsea.png")
    res = subprocess.run([_tool(), "segment", "--vae", str(tmp_path / "none.npz"), "--answer",
                          "x", image], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "none.npz" in res.stderr


def test_session_segment_and_detect_overlay(vae, tiny_model, tiny_dir, model_images, tmp_path):
    """Plumbing on the tiny random checkpoint (its answers hold no real objects)."""
    path, _ = vae
    image = os.path.join(model_images, "cat_chelsea.png")
    with paligemma.Session(tiny_model) as session:
        segs = session.segment("cat ; dog", vae=path, image=image, max_new_tokens=8)
        text = session.text
    with paligemma.Image(image) as img, MaskDecoder(path) as dec:
        want, _ = segment_answer(text, img.width, img.height, dec)
    assert [s.loc for s in segs] == [s.loc for s in want]
    overlay = tmp_path / "boxes.png"
    res = subprocess.run([_tool(), "detect", "-m", tiny_dir, image, "cat", "--max-tokens", "8",
                          "--overlay", str(overlay)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    with paligemma.Image(image) as img:
        assert _png(overlay).shape == (img.height, img.width, 3)


def test_mask_arguments(vae):
    """pg_detections_mask validates its arguments: NULL, index, mask size, no seg codes."""
    import ctypes
    from paligemma import _ffi, lib
    path, _ = vae
    text = (vae_ref.answer(OBJECTS[:1]) + " ; <loc0000><loc0000><loc0512><loc0512> box").encode()
    handle = ctypes.POINTER(_ffi.pg_detections)()
    lib.pg_detections_parse(ctypes.byref(handle), text, len(text), 40, 30)
    small = (ctypes.c_uint8 * (40 * 30 - 1))()
    exact = (ctypes.c_uint8 * (40 * 30))()
    try:
        with MaskDecoder(path) as dec:
            with pytest.raises(PaliGemmaError) as info:
                lib.pg_detections_mask(handle, 0, dec._ptr(), None, small, len(small), None)
            assert info.value.status == paligemma.Status.INVALID_ARGUMENT
            assert "the 40x30 image needs 1200" in info.value.message
            lib.pg_detections_mask(handle, 0, dec._ptr(), None, exact, len(exact), None)
            assert 0 < sum(exact) < 40 * 30 and set(exact) <= {0, 1}
            box = (ctypes.c_uint32 * 4)()
            lib.pg_detections_mask(handle, 0, dec._ptr(), None, None, 0, box)  # box only
            assert list(box) == list(vae_ref.box(OBJECTS[0][0], 40, 30))
            with pytest.raises(PaliGemmaError) as info:
                lib.pg_detections_mask(handle, 1, dec._ptr(), None, exact, len(exact), None)
            assert info.value.status == paligemma.Status.NOT_FOUND
            with pytest.raises(PaliGemmaError) as info:
                lib.pg_detections_mask(handle, 2, dec._ptr(), None, exact, len(exact), None)
            assert info.value.status == paligemma.Status.INVALID_ARGUMENT
            with pytest.raises(PaliGemmaError):
                lib.pg_detections_mask(handle, 0, None, None, exact, len(exact), None)
            with pytest.raises(PaliGemmaError):
                lib.pg_detections_mask(None, 0, dec._ptr(), None, exact, len(exact), None)
    finally:
        lib.pg_detections_free(handle)
    with pytest.raises(PaliGemmaError):
        lib.pg_mask_decoder_load(None, b"x.npz")
