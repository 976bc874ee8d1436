#!/usr/bin/env python3
"""`pg index` / `pg search` on a folder of the fixture images with the tiny model.

usage: cli_index.py PG MODEL_DIR PHOTOS_DIR CORRUPT_DIR

Checks: the files / results / boxes rows (text and ids equal `pg caption` / `pg detect` of the
same image alone, boxes equal pg detect's, normalised boxes = pixels / size), corrupt images
become error rows and the run goes on, a second run does no model work and changes no row, a
moved file keeps its results and a changed one is redone, FTS5 search finds and ranks
captions, and the schema facts of docs/index-schema.md (user_version 1, WAL).
"""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import index_util as u  # noqa: E402
from index_util import check, rows, run  # noqa: E402

PHOTOS = ['coins.png', 'egret.jpg', 'horse.png', 'snake.jpg', 'snake-grayscale.jpg']
CORRUPT = ['derived_coffee_truncated_50pct.jpg', 'derived_png_signature_only.png']
TASKS = 'caption,detect:person ; dog'
NTOK = 24


def main():
    pg, model, photos, corrupt = sys.argv[1:5]
    tmp = tempfile.mkdtemp(prefix='pg-index-')
    lib = os.path.join(tmp, 'lib')
    u.copy_photos(photos, lib, PHOTOS)
    u.copy_photos(corrupt, os.path.join(lib, 'broken'), CORRUPT)
    with open(os.path.join(lib, 'notes.txt'), 'w') as f:
        f.write('not a photo\n')
    db = os.path.join(lib, '.paligemma.sqlite')
    base = [pg, 'index', '-m', model, '--tasks', TASKS, '--max-tokens', str(NTOK),
            '--threads', '2']

    rc, _, err = run(base + ['--batch', '3', lib])
    s = u.summary(err)
    check(rc == 1, 'first run exits 1 (some images failed), got %d' % rc)
    check(s == {'files': 7, 'indexed': 5, 'done': 0, 'failed': 2, 'other': 1, 'results': 14},
          'first run summary %s' % s)
    check('notes.txt: not a JPEG or PNG: skipped' in err, 'the non-image is a note')
    check(os.path.exists(db), 'default database DIR/.paligemma.sqlite')
    check(rows(db, 'PRAGMA user_version') == [(1,)], 'user_version 1')
    check(rows(db, 'PRAGMA journal_mode') == [('wal',)], 'WAL mode')

    files = {r[0]: r for r in rows(db, 'SELECT path, size, mtime_ns, hash, width, height, '
                                       'error FROM files')}
    check(len(files) == 7, '7 files rows')
    for name in PHOTOS + ['broken/' + c for c in CORRUPT]:
        p = os.path.realpath(os.path.join(lib, name))
        r = files.get(p)
        st = os.stat(p)
        check(r is not None and r[1] == st.st_size and r[2] == st.st_mtime_ns and
              re.fullmatch('[0-9a-f]{32}', r[3] or ''), 'files row of %s' % name)
    hashes = [r[3] for r in files.values()]
    check(len(set(hashes)) == 7, 'distinct contents have distinct hashes')

    # Every photo: caption and detect results equal what pg caption / pg detect print alone.
    for name in PHOTOS:
        p = os.path.realpath(os.path.join(lib, name))
        h, w, hgt = files[p][3], files[p][4], files[p][5]
        res = {r[0]: r for r in rows(db, 'SELECT task, prompt, status, text, token_ids, '
                                         'model_variant, id FROM results WHERE hash = ?', (h,))}
        rc1, out, _ = run([pg, 'caption', '-m', model, '--json', '-n', str(NTOK), p])
        alone = json.loads(out)
        cap = res.get('caption')
        check(cap is not None and cap[1] == 'caption en' and cap[2] == 'ok' and
              cap[3] == alone['text'] and json.loads(cap[4]) == alone['ids'],
              '%s: caption row = pg caption alone' % name)
        check(cap is not None and cap[5] == 'custom' or cap[5].startswith(('3b', '10b', '28b')),
              '%s: model_variant set' % name)
        rc2, out, _ = run([pg, 'detect', '-m', model, '--json', '--max-tokens', str(NTOK), p,
                           'person ; dog'])
        dalone = json.loads(out)
        det = res.get('detect')
        check(det is not None and det[1] == 'detect person ; dog' and det[3] == dalone['text'],
              '%s: detect row = pg detect alone' % name)
        boxes = rows(db, 'SELECT label, x_min, y_min, x_max, y_max, nx_min, ny_min, nx_max, '
                         'ny_max FROM boxes WHERE result_id = ? ORDER BY idx', (det[6],))
        want = dalone['detections']
        check(len(boxes) == len(want) and all(
            b[0] == d['label'] and all(abs(b[1 + k] - d['box'][k]) < 1e-3 for k in range(4))
            for b, d in zip(boxes, want)), '%s: %d boxes = pg detect\'s' % (name, len(want)))
        check(all(abs(b[5] - b[1] / w) < 1e-6 and abs(b[6] - b[2] / hgt) < 1e-6 and
                  abs(b[7] - b[3] / w) < 1e-6 and abs(b[8] - b[4] / hgt) < 1e-6 for b in boxes),
              '%s: normalised boxes = pixels / (width, height)' % name)
    n_boxes = rows(db, 'SELECT count(*) FROM boxes')[0][0]
    print('       (%d boxes in all)' % n_boxes)

    for c in CORRUPT:
        p = os.path.realpath(os.path.join(lib, 'broken', c))
        r = files[p]
        res = rows(db, 'SELECT status, error FROM results WHERE hash = ?', (r[3],))
        check(r[4] is None and r[6] and len(res) == 2 and all(x[0] == 'error' and x[1]
                                                            for x in res),
              '%s: files.error set, two error results' % c)

    # Second run: no model work, no row changed.
    snap = rows(db, 'SELECT * FROM results ORDER BY id')
    rc, _, err = run(base + [lib])
    s = u.summary(err)
    check(rc == 0 and s and s['indexed'] == 0 and s['done'] == 7 and s['results'] == 0,
          'second run: no model work (%s, rc %d)' % (s, rc))
    check(rows(db, 'SELECT * FROM results ORDER BY id') == snap, 'second run: results unchanged')

    # Move one file, change another.
    os.makedirs(os.path.join(lib, 'moved'))
    old = os.path.join(lib, 'egret.jpg')
    new = os.path.join(lib, 'moved', 'egret-renamed.jpg')
    os.rename(old, new)
    with open(os.path.join(lib, 'snake.jpg'), 'ab') as f:
        f.write(b'changed')
    rc, _, err = run(base + [lib])
    s = u.summary(err)
    check(s and s['indexed'] == 1 and s['done'] == 6 and s['results'] == 2,
          'move + change: only the changed file is redone (%s)' % s)
    paths = {r[0]: r[1] for r in rows(db, 'SELECT path, hash FROM files')}
    check(os.path.realpath(old) not in paths and paths.get(os.path.realpath(new)) ==
          files[os.path.realpath(old)][3], 'the moved file: new path, same hash, old row gone')
    check(paths.get(os.path.realpath(os.path.join(lib, 'snake.jpg'))) !=
          files[os.path.realpath(os.path.join(lib, 'snake.jpg'))][3], 'the changed file: new hash')
    check(rows(db, 'SELECT count(*) FROM (SELECT 1 FROM results GROUP BY hash, model_id, task, '
                   'prompt HAVING count(*) > 1)') == [(0,)], 'no duplicate result keys')

    # --rescan retries error results (still errors) and re-hashes.
    rc, _, err = run(base + ['--rescan', lib])
    s = u.summary(err)
    check(s and s['failed'] == 2 and s['indexed'] == 0 and s['results'] == 4,
          '--rescan: the 2 corrupt files are retried (%s)' % s)

    search(pg, db, lib)
    progress_modes(pg, model, photos, tmp)
    print('%d failure(s)' % u.failures)
    return 1 if u.failures else 0


def progress_modes(pg, model, photos, tmp):
    """A bar on a terminal, plain lines otherwise, nothing with --quiet."""
    import pty
    import subprocess
    lib = os.path.join(tmp, 'bar')
    u.copy_photos(photos, lib, PHOTOS[:3])
    cmd = [pg, 'index', '-m', model, '--max-tokens', '8', '--threads', '2']
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd + ['--db', os.path.join(tmp, 'bar1.sqlite'), lib],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b''
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=60)
    os.close(master)
    text = out.decode('utf-8', 'replace')
    check(p.returncode == 0 and '\r[' in text and '3/3' in text and 'images/min' in text and
          'ETA' in text and 'pg index: 1/3' not in text, 'terminal: a bar (done/total, '
          'images/min, ETA), no plain lines')
    rc, _, err = run(cmd + ['--db', os.path.join(tmp, 'bar2.sqlite'), lib])
    lines = [l for l in err.splitlines() if l.startswith('pg index: ') and '/3 ' in l]
    check(rc == 0 and len(lines) == 3 and '\r' not in err and 'images/min' in lines[-1],
          'not a terminal: one plain line per file')
    rc, _, err = run(cmd + ['--quiet', '--db', os.path.join(tmp, 'bar3.sqlite'), lib])
    check(rc == 0 and err == '', '--quiet: nothing on success')


def search(pg, db, lib):
    caps = rows(db, "SELECT f.path, r.text FROM files f JOIN results r ON r.hash = f.hash "
                    "WHERE r.task = 'caption' AND r.status = 'ok'")
    # A word (as FTS5's unicode61 tokenizer splits: letters and digits) of one caption.
    word, path = None, None
    for p, t in caps:
        words = [w for w in re.findall(r'[A-Za-z0-9]+', t) if len(w) > 2]
        if words:
            word, path = words[0], p
            break
    check(word is not None, 'some caption has a word (%s)' % word)
    rc, out, err = run([pg, 'search', '--db', db, word, '--json'])
    hits = [json.loads(line) for line in out.splitlines()]
    check(rc == 0 and any(h['path'] == path for h in hits), 'search %r finds %s' % (word, path))
    check(all(word.lower() in re.findall(r'[a-z0-9]+', h['text'].lower()) for h in hits),
          'every hit holds the word')
    check([h['score'] for h in hits] == sorted(h['score'] for h in hits), 'hits ranked')
    expect = {p for p, t in caps if word.lower() in re.findall(r'[a-z0-9]+', t.lower())}
    check({h['path'] for h in hits} == expect, 'hits = the files whose caption holds it')
    rc, out, _ = run([pg, 'search', '--db', db, 'zzqqxxnothing'])
    check(rc == 0 and out == '', 'no hit: empty output')
    rc, out, _ = run([pg, 'search', '--db', db, word])
    check(rc == 0 and out.splitlines()[0].split('\t')[0] == hits[0]['path'],
          'text output: PATH<TAB>CAPTION')
    rc, _, err = run([pg, 'search', '--db', os.path.join(lib, 'nope.sqlite'), 'x'])
    check(rc == 1 and 'nope.sqlite' in err, 'missing database: clear message')


if __name__ == '__main__':
    sys.exit(main())
