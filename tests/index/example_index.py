#!/usr/bin/env python3
"""examples/index_photos.c: indexes, resumes (second run does no work) and searches.

usage: example_index.py INDEX_PHOTOS MODEL_DIR PHOTOS_DIR
"""
import os
import re
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import index_util as u  # noqa: E402
from index_util import check, run  # noqa: E402


def main():
    exe, model, photos = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix='pg-index-example-')
    lib = os.path.join(tmp, 'photos')
    u.copy_photos(photos, lib, ['egret.jpg', 'horse.png'])
    db = os.path.join(tmp, 'cat.sqlite')
    rc, out, err = run([exe, model, lib, db])
    check(rc == 0 and 'indexed 2, already done 0, failed 0' in out and
          out.count('[') == 2, 'first run indexes 2 (%s%s)' % (out, err))
    con = sqlite3.connect(db)
    (cap,), = con.execute("SELECT text FROM results r JOIN files f ON f.hash = r.hash "
                          "WHERE f.path LIKE '%egret.jpg'").fetchall()
    con.close()
    word = re.findall(r'[A-Za-z0-9]{3,}', cap)[0]
    rc, out, _ = run([exe, model, lib, db, word])
    check(rc == 0 and 'indexed 0, already done 2' in out, 'second run does no model work')
    check(re.search(r'^hit -?[0-9.]+ .*egret\.jpg: ', out, re.M) is not None,
          'search %r finds egret.jpg' % word)
    print('%d failure(s)' % u.failures)
    return 1 if u.failures else 0


if __name__ == '__main__':
    sys.exit(main())
