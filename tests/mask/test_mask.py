#!/usr/bin/env python3
"""The mask decoder and placement (lib/mask) against the NumPy float64 reference (vae_ref.py)
on random-weight .npz files in vae-oid.npz's layout that this test writes (np.savez and
np.savez_compressed), through the public API (mask_dump). Checks:

- decoder logits within 1e-4 relative (max |C - ref| / max |ref|) of the float64 reference;
- masks identical to PIL's BILINEAR resize of the C logits thresholded > 0 (the placement
  alone, exactly), and identical to the reference's mask except at pixels whose reference
  value lies within 1e-6 * max|logits| of the threshold;
- boxes int(loc / 1023 * side) for upscaled, downscaled (antialiased), same-size, one-pixel
  and full-image boxes on odd image sizes;
- goldens from ../shared/fixtures/seg when present (skipped otherwise).

Usage: test_mask.py MASK_DUMP. Prints "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vae_ref  # noqa: E402

passed = failed = 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + msg)


def run_dump(tool, npz, width, height, text, tmp):
    prefix = os.path.join(tmp, "out")
    r = subprocess.run([tool, npz, str(width), str(height), text, prefix],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return None, r.stderr.strip()
    n = int(r.stdout.strip())
    objs = []
    for i in range(n):
        logits = np.fromfile("%s.%d.logits" % (prefix, i), np.float32).reshape(64, 64)
        mask = np.fromfile("%s.%d.mask" % (prefix, i), np.uint8).reshape(height, width)
        bx = tuple(int(v) for v in open("%s.%d.box" % (prefix, i)).read().split())
        objs.append((logits, mask, bx))
    return objs, ""


def check_objects(tool, npz, weights, width, height, objects, tmp, what):
    got, err = run_dump(tool, npz, width, height, vae_ref.answer(objects), tmp)
    check(got is not None and len(got) == len(objects),
          "%s: %d objects expected, got %s (%s)" % (what, len(objects),
                                                     None if got is None else len(got), err))
    if got is None:
        return
    for k, ((loc, codes, _), (logits, mask, bx)) in enumerate(zip(objects, got)):
        ref = vae_ref.decode(weights, codes)
        scale = np.abs(ref).max()
        rel = np.abs(logits - ref).max() / scale
        check(rel <= 1e-4, "%s object %d: logits differ by %.3g relative" % (what, k, rel))
        check(bx == vae_ref.box(loc, width, height),
              "%s object %d: box %s, want %s" % (what, k, bx, vae_ref.box(loc, width, height)))
        # placement alone: PIL on the C logits gives exactly the C mask
        own, _, _ = vae_ref.full_mask(logits, loc, width, height)
        check(np.array_equal(own, mask), "%s object %d: %d pixels differ from PIL's resize of "
              "the same logits" % (what, k, int((own != mask).sum())))
        # end to end: the reference mask, except pixels at the threshold
        want, values, _ = vae_ref.full_mask(ref.astype(np.float32), loc, width, height)
        diff = want != mask
        if values is not None:
            x0, y0, x1, y1 = bx
            near = np.zeros_like(diff)
            near[y0:y1, x0:x1] = np.abs(values) <= 1e-6 * scale
            diff &= ~near
        check(not diff.any(), "%s object %d: %d mask pixels differ from the reference away "
              "from the threshold" % (what, k, int(diff.sum())))
        check(mask.max() <= 1, "%s object %d: mask values other than 0/1" % (what, k))


def random_objects(rng, n, shapes):
    objs = []
    for i in range(n):
        y0, x0 = rng.integers(0, 700, 2)
        hgt, wid = shapes[i % len(shapes)]
        loc = [int(y0), int(x0), int(min(y0 + hgt, 1023)), int(min(x0 + wid, 1023))]
        objs.append((loc, [int(c) for c in rng.integers(0, 128, 16)], "obj%d" % i))
    return objs


def test_random(tool, tmp):
    rng = np.random.default_rng(14)
    weights = vae_ref.random_vae(rng)
    for compressed in (False, True):
        npz = os.path.join(tmp, "vae-%d.npz" % compressed)
        vae_ref.save_npz(npz, weights, compressed)
        # loc extents (in 1/1023) chosen to hit upscaling, shrinking with antialias, one axis
        # unchanged, tiny boxes
        objs = random_objects(rng, 4, [(300, 200), (40, 30), (64, 500), (2, 2)])
        check_objects(tool, npz, weights, 640, 480, objs, tmp, "savez(%d) 640x480" % compressed)
    npz = os.path.join(tmp, "vae-0.npz")
    full = [([0, 0, 1023, 1023], list(range(0, 128, 8)), "all"),
            ([0, 0, 1023, 1023], [127] * 16, "same")]
    check_objects(tool, npz, weights, 97, 1001, full, tmp, "full box 97x1001")
    check_objects(tool, npz, weights, 64, 64, full, tmp, "full box 64x64 (no resize)")
    # a box that truncation makes empty: all zero mask, still PG_OK
    got, err = run_dump(tool, npz, 10, 10, vae_ref.answer([([0, 0, 50, 50], [1] * 16, "x")]),
                        tmp)
    check(got is not None and got[0][2] == (0, 0, 0, 0) and not got[0][1].any(),
          "empty box after truncation: %s %s" % (None if got is None else got[0][2], err))


def test_small_dim(tool, tmp):
    """The codebook size is read from the file (D = 8 here)."""
    rng = np.random.default_rng(7)
    weights = vae_ref.random_vae(rng, dim=8, with_encoder=False)
    npz = os.path.join(tmp, "vae-d8.npz")
    vae_ref.save_npz(npz, weights)
    check_objects(tool, npz, weights, 300, 200, random_objects(rng, 2, [(500, 400)]), tmp,
                  "D=8")


def test_bad_files(tool, tmp):
    """Wrong shapes, missing arrays and other dtypes are refused with a clear message."""
    rng = np.random.default_rng(3)
    good = vae_ref.random_vae(rng, dim=8, with_encoder=False)
    text = vae_ref.answer([([0, 0, 512, 512], [0] * 16, "x")])
    cases = []
    w = dict(good)
    del w["decoder.3.net.2.bias"]
    cases.append((w, "no array 'decoder.3.net.2.bias'"))
    w = dict(good)
    w["decoder.6.weight"] = w["decoder.6.weight"][:, :32]
    cases.append((w, "decoder.6.weight has shape [128, 32, 4, 4], expected [128, 64, 4, 4]"))
    w = dict(good)
    w["_vq_vae._embedding"] = w["_vq_vae._embedding"][:100]
    cases.append((w, "_vq_vae._embedding must be [128, D]"))
    w = dict(good)
    w["decoder.12.bias"] = np.zeros(1, np.int32)
    cases.append((w, "dtype '<i4' is not a float"))
    w = dict(good)
    w["decoder.0.bias"] = w["decoder.0.bias"].astype(">f4")
    cases.append((w, "big-endian"))
    for i, (w, msg) in enumerate(cases):
        npz = os.path.join(tmp, "bad%d.npz" % i)
        vae_ref.save_npz(npz, w)
        got, err = run_dump(tool, npz, 100, 100, text, tmp)
        check(got is None and msg in err, "bad file %d: want '%s', got '%s'" % (i, msg, err))
    # float64 arrays are converted (and give the same result as their float32 values)
    w = {k: v.astype(np.float64) for k, v in good.items()}
    npz = os.path.join(tmp, "f64.npz")
    vae_ref.save_npz(npz, w)
    check_objects(tool, npz, good, 100, 100, [([0, 0, 512, 512], [5] * 16, "x")], tmp, "f64")
    open(os.path.join(tmp, "junk.npz"), "wb").write(b"PK\x03\x04 not really a zip")
    got, err = run_dump(tool, os.path.join(tmp, "junk.npz"), 100, 100, text, tmp)
    check(got is None and "junk.npz" in err, "junk file: %s" % err)
    got, err = run_dump(tool, os.path.join(tmp, "missing.npz"), 100, 100, text, tmp)
    check(got is None and "missing.npz" in err, "missing file: %s" % err)


def test_shared_goldens(tool, tmp):
    """../shared/fixtures/seg: a vae npz plus goldens.json [{codes, loc, width, height,
    logits (64x64), mask_sum}] when some session provided them."""
    root = os.environ.get("PG_SHARED_FIXTURES_DIR", "")
    gold = os.path.join(root, "seg", "goldens.json")
    if not os.path.exists(gold):
        print("skip: no shared seg goldens (%s)" % gold)
        return
    spec = json.load(open(gold))
    npz = os.path.join(root, "seg", spec.get("npz", "vae-oid.npz"))
    for k, g in enumerate(spec["cases"]):
        got, err = run_dump(tool, npz, g["width"], g["height"],
                            vae_ref.answer([(g["loc"], g["codes"], "x")]), tmp)
        check(got is not None, "golden %d: %s" % (k, err))
        if got is None:
            continue
        ref = np.asarray(g["logits"], np.float64)
        rel = np.abs(got[0][0] - ref).max() / np.abs(ref).max()
        check(rel <= 1e-4, "golden %d: logits differ by %.3g relative" % (k, rel))
        if "mask_sum" in g:
            check(abs(int(got[0][1].sum()) - g["mask_sum"]) <= 2,
                  "golden %d: mask area %d, want %d" % (k, got[0][1].sum(), g["mask_sum"]))


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        test_random(tool, tmp)
        test_small_dim(tool, tmp)
        test_bad_files(tool, tmp)
        test_shared_goldens(tool, tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
