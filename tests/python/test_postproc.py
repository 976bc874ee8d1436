"""paligemma.parse_detections (pg_detections_*) and the `pg detect` tool.

Hand arithmetic: a coordinate is loc / 1024 * side, so on a 640x480 image loc 128 -> x 80,
loc 896 -> x 560, loc 256 -> y 120, loc 768 -> y 360; all exact in float32.
"""
import json
import os
import subprocess

import pytest

import paligemma
from paligemma import Detection, parse_detections

SEG = "".join("<seg%03d>" % (i * 8 + 7) for i in range(16))


def test_two_boxes():
    dets = parse_detections("<loc0256><loc0128><loc0768><loc0896> cat ; "
                            "<loc0000><loc0000><loc1023><loc1023> dog", 640, 480)
    assert dets == [
        Detection("cat", (80.0, 120.0, 560.0, 360.0), (256, 128, 768, 896), None),
        Detection("dog", (0.0, 0.0, 639.375, 479.53125), (0, 0, 1023, 1023), None),
    ]


def test_segmentation_codes_are_raw():
    (det,) = parse_detections("<loc0100><loc0200><loc0300><loc0400>" + SEG + " cat", 1024, 512)
    assert det.box == (200.0, 50.0, 400.0, 150.0)
    assert det.seg == tuple(i * 8 + 7 for i in range(16))
    assert det.label == "cat"


def test_bytes_unicode_and_garbage():
    text = "x <loc0001><loc0002><loc0003><loc0004> chat noir \u00e9 ;<loc1024>"
    (det,) = parse_detections(text.encode("utf-8"), 1024, 1024)
    assert det.label == "chat noir \u00e9" and det.loc == (1, 2, 3, 4)
    assert parse_detections("", 10, 10) == []
    assert parse_detections("a caption, no boxes", 10, 10) == []
    assert parse_detections("<loc1024><loc0000><loc0500><loc0500> bad", 10, 10) == []
    assert parse_detections("<loc0001><loc0002><loc00", 10, 10) == []
    # Embedded NUL bytes are ordinary bytes: the length, not a terminator, bounds the text.
    (det,) = parse_detections("\0<loc0000><loc0000><loc0512><loc0512> a\0b", 2, 2)
    assert det.label == "a\0b" and det.box == (0.0, 0.0, 1.0, 1.0)


def test_bad_image_size():
    with pytest.raises(paligemma.PaliGemmaError) as info:
        parse_detections("<loc0000><loc0000><loc0512><loc0512> a", 0, 10)
    assert info.value.status == paligemma.Status.INVALID_ARGUMENT
    assert "image size" in info.value.message


def test_pg_detect_tool(tiny_dir, model_images):
    """The tool's JSON agrees with parse_detections on its own text (random tiny weights: the
    answer is arbitrary, the plumbing is what is checked)."""
    tool = os.environ.get("PG_TOOL")
    if not tool:
        pytest.skip("PG_TOOL not set")
    path = os.path.join(model_images, "cat_chelsea.png")
    res = subprocess.run([tool, "detect", "-m", tiny_dir, path, "cat ; dog", "--json",
                          "--max-tokens", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    with paligemma.Image(path) as image:
        want = parse_detections(out["text"], image.width, image.height)
    assert [(d["label"], tuple(d["box"]), tuple(d["loc"]), tuple(d["seg"]) or None)
            for d in out["detections"]] == [(d.label, d.box, d.loc, d.seg) for d in want]
    with paligemma.Model(tiny_dir) as model, paligemma.Session(model) as session:
        session.set_image(path)
        assert session.generate("detect cat ; dog", max_new_tokens=8) == out["text"]
