#!/usr/bin/python3
"""Decode + preprocess benchmark: libpaligemma against Pillow, measured in the same run.

  bench_image.py BENCH_EXE [SHARED_FIXTURES_DIR]

Inputs: a 12-megapixel photo-like JPEG (4000x3000, q92, 4:2:0) generated here from
coffee.png (upscaled, with noise so that it has a real photo's entropy), and, when
../shared is present, derived/coffee_8000x6000.jpg. Every measurement runs in its own
process (peak RSS is per process). Pillow's path is Hugging Face's: open, exif_transpose,
convert("RGB"), resize((S, S), BICUBIC), rescale/normalise to float32 CHW with NumPy.
"""
import json, os, subprocess, sys, tempfile

REPEATS = 3
SIZES = (224, 448, 896)

PIL_CHILD = r'''
import sys, time, json
import numpy as np
from PIL import Image, ImageOps
path, S, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bd = bp = bc = 1e30
for _ in range(reps):
    c0 = time.process_time()
    t0 = time.perf_counter()
    im = Image.open(path); im = ImageOps.exif_transpose(im).convert("RGB")
    t1 = time.perf_counter()
    r = np.asarray(im.resize((S, S), Image.BICUBIC))
    x = (r.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1).copy()
    t2 = time.perf_counter()
    bd, bp, bc = min(bd, t1 - t0), min(bp, t2 - t1), min(bc, time.process_time() - c0)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"decode_ms": bd * 1e3, "preprocess_ms": bp * 1e3, "cpu_ms": bc * 1e3,
                  "peak_rss_mib": int(hwm) / 1024}))
'''


MAKE_12MP = r'''
import sys
import numpy as np
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
im = Image.open(src).convert('RGB').resize((4000, 3000), Image.BICUBIC)
a = np.asarray(im).astype(np.int16)
rng = np.random.default_rng(0)
a = np.clip(a + rng.normal(0, 6, a.shape).astype(np.int16), 0, 255).astype(np.uint8)
Image.fromarray(a).save(dst, quality=92, subsampling=2)
'''


def make_12mp(dst, src):
    # In a child process, so that this process stays small (peak RSS is per process).
    subprocess.run([sys.executable, '-c', MAKE_12MP, src, dst], check=True)


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    exe = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.environ.get('PG_SHARED_FIXTURES', '')
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(here, '..', 'data', 'image', 'models', 'coffee.png')
    tmp = tempfile.mkdtemp(prefix='pg_bench_image_')
    files = []
    p12 = os.path.join(tmp, 'photo_4000x3000.jpg')
    make_12mp(p12, src)
    files.append(('12 MP JPEG 4000x3000', p12))
    big = os.path.join(shared, 'images', 'derived', 'coffee_8000x6000.jpg') if shared else ''
    if big and os.path.exists(big):
        files.append(('48 MP JPEG 8000x6000', big))
    else:
        print('(8000x6000 JPEG: ../shared absent, skipped)')
    print(f"{'input':21} {'S':>4} {'who':>13} {'decode ms':>9} {'prep ms':>8} {'total ms':>8}"
          f" {'CPU ms':>8} {'peak MiB':>8} {'speedup':>7} {'CPU':>6}")
    for label, path in files:
        for S in SIZES:
            pil = run([sys.executable, '-c', PIL_CHILD, path, str(S), str(REPEATS)])
            ours = run([exe, path, str(S), str(REPEATS)])
            fast = run([exe, path, str(S), str(REPEATS), 'fast'])
            pt = pil['decode_ms'] + pil['preprocess_ms']
            for who, r in (('Pillow 9.4', pil), ('libpaligemma', ours), ('fast (DCT)', fast)):
                t = r['decode_ms'] + r['preprocess_ms']
                print(f"{label:21} {S:4} {who:>13} {r['decode_ms']:9.1f} {r['preprocess_ms']:8.1f}"
                      f" {t:8.1f} {r['cpu_ms']:8.1f} {r['peak_rss_mib']:8.1f} {pt / t:6.2f}x"
                      f" {pil['cpu_ms'] / r['cpu_ms']:5.2f}x")
    os.remove(p12)
    os.rmdir(tmp)


if __name__ == '__main__':
    main()
