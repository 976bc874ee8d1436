#!/usr/bin/python3
"""Copies the small image fixtures and the expected Pillow results into tests/data/image/.

Run by hand (with Debian's /usr/bin/python3) when ../shared/fixtures changes; the tests only
read what this writes, so they run on a fresh clone without ../shared.

  decode_expected.tsv      path, Pillow result (ok/error), width, height, mode,
                           sha256[:16] of Pillow's convert("RGB") bytes (no EXIF transpose)
  preprocess_expected.tsv  input, size, resample, sha256[:16] of Pillow's resized RGB bytes
  files/<path>             the fixture files up to MAX_COPY bytes
  models/                  the oracle's input images and the small pixel_values goldens
"""
import json, os, shutil, sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
shared = os.environ.get('PG_SHARED_FIXTURES', os.path.join(repo, '..', 'shared', 'fixtures'))
imgs = os.path.join(shared, 'images')
out = os.path.join(repo, 'tests', 'data', 'image')
MAX_COPY = 100_000

os.makedirs(out, exist_ok=True)
manifest = json.load(open(os.path.join(imgs, 'MANIFEST.json')))
rows = []
for e in manifest:
    p = e['path']
    if p.startswith('preprocess_golden/'):
        continue
    ok = e.get('pil_decode') == 'ok'
    w, h = e.get('size') or (0, 0)
    rows.append('\t'.join([p, 'ok' if ok else 'error', str(w), str(h), e.get('pil_mode') or '-',
                           e.get('pil_rgb_sha256', '-') if ok else '-']))
    if e['bytes'] <= MAX_COPY:
        dst = os.path.join(out, 'files', p)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(imgs, p), dst)
with open(os.path.join(out, 'decode_expected.tsv'), 'w') as f:
    f.write('# path\tpillow\twidth\theight\tmode\trgb_sha256_16\n' + '\n'.join(rows) + '\n')

golden = json.load(open(os.path.join(imgs, 'preprocess_golden', 'preprocess_golden.json')))
with open(os.path.join(out, 'preprocess_expected.tsv'), 'w') as f:
    f.write('# input\tsize\tresample\trgb_sha256_16\n')
    for g in golden:
        f.write(f"{g['input']}\t{g['size']}\t{g['resample']}\t{g['rgb_sha256']}\n")

models = os.path.join(shared, 'models')
mdst = os.path.join(out, 'models')
os.makedirs(mdst, exist_ok=True)
for name in sorted(os.listdir(os.path.join(models, 'images'))):
    shutil.copyfile(os.path.join(models, 'images', name), os.path.join(mdst, name))
for cfg in ('tiny', 'tiny_b'):
    gdir = os.path.join(models, 'golden', cfg)
    for d in sorted(os.listdir(gdir)):
        src = os.path.join(gdir, d, 'pixel_values.npy')
        if d.startswith('image_') and os.path.exists(src):
            shutil.copyfile(src, os.path.join(mdst, f'{cfg}__{d}__pixel_values.npy'))
for name in sorted(os.listdir(imgs)):
    if name.startswith('LICENSE.'):
        shutil.copyfile(os.path.join(imgs, name), os.path.join(out, 'files', name))
print('wrote', out)

# EXIF orientation: Pillow's ImageOps.exif_transpose (what HF load_image applies), for every
# file Pillow decodes whose transposed pixels differ from the plain decode.
import hashlib
from PIL import Image, ImageOps
with open(os.path.join(out, 'exif_expected.tsv'), 'w') as f:
    f.write('# path\torientation\twidth\theight\trgb_sha256_16 after exif_transpose\n')
    for e in manifest:
        p = e['path']
        if e.get('pil_decode') != 'ok' or p.startswith('preprocess_golden/'):
            continue
        try:
            im = Image.open(os.path.join(imgs, p))
            o = im.getexif().get(0x0112)
            t = ImageOps.exif_transpose(im).convert('RGB')
        except Exception as ex:  # noqa: BLE001 - report and go on
            print('skip', p, ex)
            continue
        if o is None:
            continue
        f.write(f"{p}\t{o}\t{t.size[0]}\t{t.size[1]}\t{hashlib.sha256(t.tobytes()).hexdigest()[:16]}\n")

# PNGs that carry the orientation the other ways Pillow 9.4's getexif() finds it: an eXIf
# chunk, ImageMagick's "Raw profile type exif" text (zTXt/tEXt, hex), or XMP (iTXt
# XML:com.adobe.xmp, tiff:Orientation) when the EXIF has no Orientation. Made here from a
# synthetic 7x5 gradient; their exif_transpose results are appended to exif_expected.tsv.
import zlib
from PIL import PngImagePlugin


def tiff_ifd0(entries):
    """Little-endian TIFF with IFD0 holding (tag, type, count, value) SHORT/LONG entries."""
    b = b'II*\x00' + (8).to_bytes(4, 'little') + len(entries).to_bytes(2, 'little')
    for tag, typ, count, value in entries:
        b += tag.to_bytes(2, 'little') + typ.to_bytes(2, 'little') + count.to_bytes(4, 'little')
        b += value.to_bytes(4, 'little')
    return b + b'\x00\x00\x00\x00'


def raw_profile(data):
    h = data.hex()
    lines = '\n'.join(h[i:i + 72] for i in range(0, len(h), 72))
    return f'\nexif\n{len(data):8d}\n{lines}\n'


def xmp(orient, attr=True):
    o = f'tiff:Orientation="{orient}"' if attr else f'<tiff:Orientation>{orient}</tiff:Orientation>'
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
            '02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
            + (o + '/>' if attr else '>' + o + '</rdf:Description>') + '</rdf:RDF></x:xmpmeta>')


grad = Image.new('RGB', (7, 5))
grad.putdata([(x * 36, y * 60, (x * y * 9) % 256) for y in range(5) for x in range(7)])
exif6 = b'Exif\x00\x00' + tiff_ifd0([(0x0112, 3, 1, 6)])
no_orient = b'Exif\x00\x00' + tiff_ifd0([(0x0100, 4, 1, 7)])
cases = {}
info = PngImagePlugin.PngInfo()
cases['exif_chunk_6.png'] = (info, dict(exif=exif6))
info = PngImagePlugin.PngInfo(); info.add_text('Raw profile type exif', raw_profile(exif6[6:].replace(b'\x06\x00', b'\x08\x00', 1)), zip=True)
cases['raw_profile_ztxt_8.png'] = (info, {})
info = PngImagePlugin.PngInfo(); info.add_text('Raw profile type exif', raw_profile(b'Exif\x00\x00' + tiff_ifd0([(0x0112, 3, 1, 3)])))
cases['raw_profile_text_3.png'] = (info, {})
info = PngImagePlugin.PngInfo(); info.add_itxt('XML:com.adobe.xmp', xmp(5))
cases['xmp_attr_5.png'] = (info, {})
info = PngImagePlugin.PngInfo(); info.add_itxt('XML:com.adobe.xmp', xmp(7, attr=False), zip=True)
cases['xmp_element_zip_7.png'] = (info, {})
info = PngImagePlugin.PngInfo(); info.add_itxt('XML:com.adobe.xmp', xmp(6))
cases['exif_without_orientation_xmp_6.png'] = (info, dict(exif=no_orient))
info = PngImagePlugin.PngInfo(); info.add_itxt('XML:com.adobe.xmp', xmp(6))
cases['exif_orientation_1_xmp_6.png'] = (info, dict(exif=b'Exif\x00\x00' + tiff_ifd0([(0x0112, 3, 1, 1)])))
pdir = os.path.join(out, 'files', 'exif_png')
os.makedirs(pdir, exist_ok=True)
with open(os.path.join(out, 'exif_expected.tsv'), 'a') as f:
    for name, (pinfo, kw) in cases.items():
        path = os.path.join(pdir, name)
        grad.save(path, pnginfo=pinfo, **kw)
        im = Image.open(path)
        o = im.getexif().get(0x0112)
        t = ImageOps.exif_transpose(im).convert('RGB')
        f.write(f"exif_png/{name}\t{o}\t{t.size[0]}\t{t.size[1]}\t"
                f"{hashlib.sha256(t.tobytes()).hexdigest()[:16]}\n")
