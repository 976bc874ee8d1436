"""An independent NumPy (float64) reference of big_vision's PaliGemma mask decoder and mask
placement, and a writer of random-weight .npz files in the layout of big_vision's vae-oid.npz.

Written from the semantics (spec section 9.3; big_vision
big_vision/evaluators/proj/paligemma/transfers/segmentation.py), not from the C code:

- the codebook `_vq_vae._embedding` [128, D]; 16 codes -> a 4x4 grid (row-major) of D channels;
- `decoder.*` convolutions in PyTorch layouts (OIHW; the transposed convs [in, out, kh, kw]),
  which big_vision converts with np.transpose(k, (2, 3, 1, 0)) for Flax;
- the transposed convolutions are computed here as Flax/lax does for
  ConvTranspose(kernel 4, strides 2, padding=2, transpose_kernel=True): the input dilated by
  2, zero-padded by 2, cross-correlated with the spatially flipped kernel (the C code uses
  PyTorch's scatter form instead, so the two agree only if that equivalence holds);
- placement: box int(loc / 1023 * side), PIL BILINEAR resize of the float32 logits, > 0.
"""
import io

import numpy as np

CODES = 16
BOOK = 128


def random_vae(rng, dim=512, with_encoder=True):
    """A dict name -> float32 array with vae-oid.npz's decoder names and shapes."""
    w = {"_vq_vae._embedding": rng.standard_normal((BOOK, dim)).astype(np.float32)}

    def conv(name, out, inp, k, transposed=False):
        fan_in = inp * k * k if not transposed else inp * 4  # stride 2: ~4 taps per output
        std = np.sqrt(2.0 / fan_in)
        shape = (inp, out, k, k) if transposed else (out, inp, k, k)
        w[name + ".weight"] = (rng.standard_normal(shape) * std).astype(np.float32)
        w[name + ".bias"] = (rng.standard_normal(out) * 0.1).astype(np.float32)

    conv("decoder.0", 128, dim, 1)
    for r in (2, 3):
        conv("decoder.%d.net.0" % r, 128, 128, 3)
        conv("decoder.%d.net.2" % r, 128, 128, 3)
        conv("decoder.%d.net.4" % r, 128, 128, 1)
    chans = [128, 128, 64, 32, 16]
    for j in range(4):
        conv("decoder.%d" % (4 + 2 * j), chans[j + 1], chans[j], 4, transposed=True)
    conv("decoder.12", 1, 16, 1)
    if with_encoder:  # present in the real file, ignored by the decoder
        w["encoder.0.weight"] = rng.standard_normal((16, 1, 4, 4)).astype(np.float32)
        w["encoder.0.bias"] = np.zeros(16, np.float32)
    return w


def save_npz(path, weights, compressed=False):
    (np.savez_compressed if compressed else np.savez)(path, **weights)


def _conv(x, wt, b):
    """PyTorch Conv2d (cross-correlation), zero padding (k-1)/2, x: [C, H, W], wt: OIHW."""
    wt = wt.astype(np.float64)
    o, _, k, _ = wt.shape
    pad = (k - 1) // 2
    _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((o, h, wd)) + b.astype(np.float64)[:, None, None]
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("oi,ihw->ohw", wt[:, :, ky, kx], xp[:, ky:ky + h, kx:kx + wd])
    return out


def _conv_transpose_lax(x, wt, b):
    """Flax ConvTranspose(4, strides 2, padding 2, transpose_kernel=True) with the PyTorch
    weight [in, out, 4, 4]: dilate by 2, pad 2, correlate with the flipped kernel."""
    wt = wt.astype(np.float64)
    c, h, wd = x.shape
    dil = np.zeros((c, 2 * h - 1, 2 * wd - 1))
    dil[:, ::2, ::2] = x
    xp = np.pad(dil, ((0, 0), (2, 2), (2, 2)))
    oh, ow = xp.shape[1] - 3, xp.shape[2] - 3  # == 2h, 2w
    out = np.zeros((wt.shape[1], oh, ow)) + b.astype(np.float64)[:, None, None]
    for ky in range(4):
        for kx in range(4):
            out += np.einsum("io,ihw->ohw", wt[:, :, 3 - ky, 3 - kx],
                             xp[:, ky:ky + oh, kx:kx + ow])
    return out


def decode(weights, codes):
    """16 codes -> 64x64 float64 logits."""
    e = weights["_vq_vae._embedding"].astype(np.float64)
    x = e[np.asarray(codes)].reshape(4, 4, -1).transpose(2, 0, 1)
    relu = lambda v: np.maximum(v, 0.0)

    def c(v, name):
        return _conv(v, weights[name + ".weight"], weights[name + ".bias"])

    x = relu(c(x, "decoder.0"))
    for r in (2, 3):
        t = relu(c(x, "decoder.%d.net.0" % r))
        t = relu(c(t, "decoder.%d.net.2" % r))
        x = x + c(t, "decoder.%d.net.4" % r)
    for j in range(4):
        n = "decoder.%d" % (4 + 2 * j)
        x = relu(_conv_transpose_lax(x, weights[n + ".weight"], weights[n + ".bias"]))
    return c(x, "decoder.12")[0]


def box(loc, width, height):
    """big_vision: y1, x1, y2, x2 = int(loc / 1023 * side); returns x0, y0, x1, y1."""
    b = np.asarray(loc) / 1023
    y1, x1, y2, x2 = map(int, (b[0] * height, b[1] * width, b[2] * height, b[3] * width))
    return x1, y1, x2, y2


def resized(logits, bx):
    """The float values PIL's BILINEAR resize gives inside the box (float32 image)."""
    import PIL.Image
    x0, y0, x1, y1 = bx
    img = PIL.Image.fromarray(np.asarray(logits, np.float32))
    return np.asarray(img.resize([x1 - x0, y1 - y0], resample=PIL.Image.BILINEAR))


def full_mask(logits, loc, width, height):
    """The image-sized 0/1 mask and the resized values (None for an empty box)."""
    bx = box(loc, width, height)
    m = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = bx
    if x1 <= x0 or y1 <= y0:
        return m, None, bx
    v = resized(logits, bx)
    m[y0:y1, x0:x1] = v > 0.0
    return m, v, bx


def answer(objects):
    """A segment answer: objects = [(loc4, codes16, label)]."""
    parts = []
    for loc, codes, label in objects:
        parts.append("".join("<loc%04d>" % v for v in loc) +
                     "".join("<seg%03d>" % v for v in codes) + " " + label)
    return " ; ".join(parts)


def npz_bytes(weights, compressed=False):
    buf = io.BytesIO()
    save_npz(buf, weights, compressed)
    return buf.getvalue()
