"""Helpers shared by the pg index tests (standard library only)."""
import os
import shutil
import sqlite3
import subprocess

failures = 0


def check(ok, what):
    global failures
    print(('ok    ' if ok else 'FAIL  ') + what, flush=True)
    failures += 0 if ok else 1


def run(cmd, timeout=30, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       **kw)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def rows(db, sql, args=()):
    con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def copy_photos(src, dst, names):
    os.makedirs(dst, exist_ok=True)
    for n in names:
        shutil.copy(os.path.join(src, n), os.path.join(dst, n))


def padded_copies(src_file, dst, n):
    """n JPEGs with distinct bytes (the same picture: decoders stop at EOI)."""
    os.makedirs(dst, exist_ok=True)
    with open(src_file, 'rb') as f:
        data = f.read()
    paths = []
    for i in range(n):
        p = os.path.join(dst, 'copy%03d.jpg' % i)
        with open(p, 'wb') as f:
            f.write(data + b'pad%05d' % i)
        paths.append(p)
    return paths


def summary(stderr):
    """The numbers of pg index's last line: files, indexed, already done, failed, results."""
    for line in reversed(stderr.splitlines()):
        if ' files: ' in line and 'indexed' in line:
            nums = [int(w) for w in line.replace(',', ' ').replace(';', ' ').split()
                    if w.isdigit()]
            return dict(zip(['files', 'indexed', 'done', 'failed', 'other', 'results'], nums))
    return None
