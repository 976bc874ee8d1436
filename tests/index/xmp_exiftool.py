#!/usr/bin/env python3
"""XMP sidecars read back by exiftool (libimage-exiftool-perl), standard library otherwise.

usage: xmp_exiftool.py XMP_WRITE PG MODEL_DIR PHOTOS_DIR

1. The writer (lib/index/xmp.c, through the xmp_write helper) on a sidecar that already holds
   a rating, a title, a keyword and someone else's image region: exiftool reads back our
   dc:description (x-default), our dc:subject keywords added to the old one, our regions as
   relative rectangles with their names; a second write replaces our caption and regions and
   keeps every property we do not own.
2. `pg index --xmp` on fixture photos: each sidecar's description is the caption in the
   catalogue, its regions are the catalogue's boxes; a re-run leaves no duplicate regions.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import index_util as u  # noqa: E402
from index_util import check, rows, run  # noqa: E402

FOREIGN = '''<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmp:Rating="3">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Holiday</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>family</rdf:li></rdf:Bag></dc:subject>
   <Iptc4xmpExt:ImageRegion><rdf:Bag><rdf:li rdf:parseType="Resource">
     <Iptc4xmpExt:rId>face-1</Iptc4xmpExt:rId>
     <Iptc4xmpExt:RegionBoundary rdf:parseType="Resource">
      <Iptc4xmpExt:rbShape>rectangle</Iptc4xmpExt:rbShape>
      <Iptc4xmpExt:rbUnit>relative</Iptc4xmpExt:rbUnit>
      <Iptc4xmpExt:rbX>0.7</Iptc4xmpExt:rbX><Iptc4xmpExt:rbY>0.1</Iptc4xmpExt:rbY>
      <Iptc4xmpExt:rbW>0.2</Iptc4xmpExt:rbW><Iptc4xmpExt:rbH>0.2</Iptc4xmpExt:rbH>
     </Iptc4xmpExt:RegionBoundary>
   </rdf:li></rdf:Bag></Iptc4xmpExt:ImageRegion>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
'''


def exif(path):
    p = subprocess.run(['exiftool', '-j', '-struct', '-XMP:all', path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        print(p.stderr.decode())
        return {}
    return json.loads(p.stdout.decode())[0]


def as_list(v):
    return v if isinstance(v, list) else [] if v is None else [v]


def near(a, b):
    return abs(float(a) - b) < 1e-5


def ours(regions):
    return [r for r in regions if str(r.get('RId', '')).startswith('paligemma-')]


def writer(xmp_write, tmp):
    image = os.path.join(tmp, 'beach.jpg')
    open(image, 'wb').close()
    side = image + '.xmp'
    with open(side, 'w') as f:
        f.write(FOREIGN)
    rc, _, err = run([xmp_write, image, '1'])
    check(rc == 0, 'first write (%s)' % err.strip())
    e = exif(side)
    check(e.get('Description') == 'a dog on a beach <with> "quotes" & caf\u00e9',
          'description read back: %r' % e.get('Description'))
    check(as_list(e.get('Subject')) == ['family', 'dog', 'person'],
          'keywords: old kept, ours added: %s' % e.get('Subject'))
    regions = as_list(e.get('ImageRegion'))
    mine = ours(regions)
    check(len(regions) == 3 and len(mine) == 2, '3 regions, 2 of them ours')
    want = [('dog', 0.1, 0.2, 0.3, 0.4), ('person', 0.5, 0.25, 0.25, 0.5)]
    for r, w in zip(mine, want):
        b = r.get('RegionBoundary', {})
        check(r.get('Name') == w[0] and str(b.get('RbShape')).lower() == 'rectangle' and
              str(b.get('RbUnit')).lower() == 'relative' and near(b.get('RbX'), w[1]) and
              near(b.get('RbY'), w[2]) and near(b.get('RbW'), w[3]) and near(b.get('RbH'), w[4]),
              'region %s: relative rectangle %s' % (w[0], b))
    check(str(e.get('Rating')) == '3' and e.get('Title') == 'Holiday',
          'rating and title kept')

    rc, _, err = run([xmp_write, image, '2'])
    e = exif(side)
    regions = as_list(e.get('ImageRegion'))
    mine = ours(regions)
    check(rc == 0 and e.get('Description') == 'a dog', 'second write: caption replaced')
    check(len(regions) == 2 and len(mine) == 1 and near(mine[0]['RegionBoundary']['RbX'], 0.125)
          and any(r.get('RId') == 'face-1' for r in regions),
          'second write: our old regions replaced, the foreign one kept')
    check(as_list(e.get('Subject')) == ['family', 'dog', 'person'], 'keywords not duplicated')
    check(str(e.get('Rating')) == '3' and e.get('Title') == 'Holiday', 'still kept')


def indexer(pg, model, photos, tmp):
    lib = os.path.join(tmp, 'lib')
    names = ['egret.jpg', 'snake.jpg', 'horse.png']
    u.copy_photos(photos, lib, names)
    with open(os.path.join(lib, 'horse.png.xmp'), 'w') as f:
        f.write(FOREIGN)
    cmd = [pg, 'index', '-m', model, '--tasks', 'caption,detect:person ; dog', '--max-tokens',
           '24', '--threads', '2', '--xmp', '--quiet', lib]
    rc, _, err = run(cmd)
    check(rc == 0, 'pg index --xmp (%s)' % err.strip())
    rc, _, err = run(cmd)  # a second run must not duplicate our regions
    db = os.path.join(lib, '.paligemma.sqlite')
    for n in names:
        p = os.path.realpath(os.path.join(lib, n))
        (h,), = rows(db, 'SELECT hash FROM files WHERE path = ?', (p,))
        (cap,), = rows(db, "SELECT text FROM results WHERE hash = ? AND task = 'caption'", (h,))
        boxes = rows(db, 'SELECT b.nx_min, b.ny_min, b.nx_max - b.nx_min, b.ny_max - b.ny_min '
                         'FROM boxes b JOIN results r ON r.id = b.result_id WHERE r.hash = ? '
                         'ORDER BY b.idx', (h,))
        e = exif(p + '.xmp')
        # XML cannot hold C0 controls but tab / newline / CR: the writer makes them spaces
        safe = ''.join(' ' if ord(c) < 32 and c not in '\t\n\r' else c for c in cap)
        check(e.get('Description') == safe, '%s: sidecar description = the catalogue caption'
              % n)
        mine = ours(as_list(e.get('ImageRegion')))
        check(len(mine) == len(boxes) and all(
            all(near(r['RegionBoundary'][k], b[i]) for i, k in
                enumerate(['RbX', 'RbY', 'RbW', 'RbH'])) for r, b in zip(mine, boxes)),
            '%s: %d regions = the catalogue boxes' % (n, len(boxes)))
    e = exif(os.path.join(lib, 'horse.png.xmp'))
    check(str(e.get('Rating')) == '3' and 'family' in as_list(e.get('Subject')) and
          any(r.get('RId') == 'face-1' for r in as_list(e.get('ImageRegion'))),
          'horse.png.xmp: the existing properties are kept')


def main():
    xmp_write, pg, model, photos = sys.argv[1:5]
    if not shutil.which('exiftool'):
        print('exiftool not installed: skipped')
        return 77
    tmp = tempfile.mkdtemp(prefix='pg-index-xmp-')
    writer(xmp_write, tmp)
    indexer(pg, model, photos, tmp)
    print('%d failure(s)' % u.failures)
    return 1 if u.failures else 0


if __name__ == '__main__':
    sys.exit(main())
