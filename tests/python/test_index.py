"""paligemma.index / search: the C indexer through Python (docs/index.md)."""
import os
import shutil
import sqlite3
import subprocess

import pytest

import paligemma
from paligemma import PaliGemmaError, Status

from conftest import data_path

PHOTOS = ["egret.jpg", "horse.png", "snake.jpg"]


@pytest.fixture
def library(tmp_path):
    src = data_path("image", "files", "photos")
    if not os.path.isdir(src):
        pytest.skip("fixture photos not found at %s" % src)
    lib = tmp_path / "lib"
    lib.mkdir()
    for n in PHOTOS:
        shutil.copy(os.path.join(src, n), lib / n)
    shutil.copy(data_path("image", "files", "corrupt", "derived_coffee_truncated_50pct.jpg"),
                lib / "broken.jpg")
    return lib


def q(db, sql, args=()):
    con = sqlite3.connect(str(db))
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_index_rows_resume_and_search(tiny_f32_dir, library):
    db = library / "cat.sqlite"
    seen = []
    with paligemma.Model(tiny_f32_dir, threads=2) as model:
        stats = paligemma.index(model, library, db=db, tasks=["caption", "detect:person ; dog"],
                                max_new_tokens=16, batch=2,
                                progress=lambda s, p, n: seen.append((s.files_done, p, n)))
        assert (stats.files_total, stats.files_indexed, stats.files_failed) == (4, 3, 1)
        assert stats.results_written == 8
        done_paths = {p for _, p, n in seen if p and not n}
        assert {os.path.basename(p) for p in done_paths} >= set(PHOTOS)
        assert any(n and "truncated" in n for _, _, n in seen)

        again = paligemma.index(model, [str(library)], db=db,
                                tasks="caption,detect:person ; dog", max_new_tokens=16)
        assert (again.files_indexed, again.files_skipped, again.results_written) == (0, 4, 0)

        mid = paligemma.index_model_id(model)
    rows = q(db, "SELECT f.path, f.hash, r.model_id, r.task FROM files f JOIN results r "
                 "ON r.hash = f.hash")
    assert len(rows) == 8
    for path, h, model_id, _ in rows:
        assert paligemma.index_hash_file(path) == h
        assert model_id == mid
    caption = q(db, "SELECT r.text FROM files f JOIN results r ON r.hash = f.hash WHERE "
                    "f.path LIKE '%egret.jpg' AND r.task = 'caption'")[0][0]
    word = next(w for w in caption.replace("<", " ").replace(">", " ").split()
                if w.isalnum() and len(w) > 2)
    hits = paligemma.search(db, word)
    assert any(h.path.endswith("egret.jpg") for h in hits)
    assert [h.score for h in hits] == sorted(h.score for h in hits)
    assert paligemma.search(db, "zzqqxxnothing") == []


def test_same_catalogue_as_the_cli(tiny_f32_dir, library, tmp_path):
    tool = os.environ.get("PG_TOOL")
    if not tool:
        pytest.skip("PG_TOOL not set")
    py_db, cli_db = tmp_path / "py.sqlite", tmp_path / "cli.sqlite"
    with paligemma.Model(tiny_f32_dir, threads=2) as model:
        paligemma.index(model, library, db=py_db, max_new_tokens=16)
    subprocess.run([tool, "index", "-m", tiny_f32_dir, "--db", str(cli_db), "--max-tokens",
                    "16", "--threads", "2", "--quiet", str(library)], check=False, timeout=120)
    sql = ("SELECT f.path, f.hash, f.width, f.height, r.model_id, r.task, r.prompt, r.status, "
           "r.text, r.token_ids FROM files f JOIN results r ON r.hash = f.hash ORDER BY f.path")
    assert q(py_db, sql) == q(cli_db, sql)
    assert len(q(py_db, sql)) == 4


def test_progress_stops_and_raises(tiny_f32_dir, library):
    db = library / "cat.sqlite"
    with paligemma.Model(tiny_f32_dir, threads=2) as model:
        with pytest.raises(PaliGemmaError) as err:
            paligemma.index(model, library, db=db, max_new_tokens=16, batch=1,
                            progress=lambda s, p, n: s.files_indexed >= 1)
        assert err.value.status == Status.CANCELLED
        kept = q(db, "SELECT count(*) FROM results WHERE status = 'ok'")[0][0]
        assert kept >= 1  # what finished before the stop is committed

        def boom(s, p, n):
            raise KeyError("from the callback")

        with pytest.raises(KeyError):
            paligemma.index(model, library, db=db, max_new_tokens=16, progress=boom)
        rest = paligemma.index(model, library, db=db, max_new_tokens=16)
        assert rest.files_indexed + kept == 3


def test_errors_and_db_init(tiny_f32_dir, tmp_path):
    with paligemma.Model(tiny_f32_dir, threads=2) as model:
        with pytest.raises(PaliGemmaError) as err:
            paligemma.index(model, tmp_path / "missing", db=tmp_path / "x.sqlite")
        assert err.value.status == Status.NOT_FOUND and "missing" in str(err.value)
        with pytest.raises(PaliGemmaError) as err:
            paligemma.index(model, tmp_path, db=tmp_path / "x.sqlite", tasks="translate")
        assert err.value.status == Status.INVALID_ARGUMENT
    db = tmp_path / "init.sqlite"
    paligemma.index_db_init(db)
    assert q(db, "PRAGMA user_version") == [(1,)]
    tables = {r[0] for r in q(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"files", "results", "boxes", "results_fts"} <= tables
    with pytest.raises(PaliGemmaError) as err:
        paligemma.index_hash_file(tmp_path / "nope.jpg")
    assert err.value.status == Status.IO
