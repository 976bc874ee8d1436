"""What two catalogues must agree on (docs/index-schema.md), as sorted tuples: every column
except row ids, timings and times (created_at, seen_at), with boxes keyed by their result."""
import sqlite3

FILES = "SELECT path, size, mtime_ns, hash, width, height, error FROM files ORDER BY path"
RESULTS = ("SELECT hash, model_variant, model_id, task, prompt, status, error, text, token_ids,"
           " stop_reason, prefill_tokens, decode_tokens FROM results"
           " ORDER BY hash, model_id, task, prompt")
BOXES = ("SELECT r.hash, r.model_id, r.task, r.prompt, b.idx, b.label, b.x_min, b.y_min,"
         " b.x_max, b.y_max, b.nx_min, b.ny_min, b.nx_max, b.ny_max"
         " FROM boxes b JOIN results r ON r.id = b.result_id"
         " ORDER BY r.hash, r.model_id, r.task, r.prompt, b.idx")


def dump(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        out = {name: db.execute(sql).fetchall()
               for name, sql in (("files", FILES), ("results", RESULTS), ("boxes", BOXES))}
        # the FTS index follows the results through the schema's triggers
        # (external content: the index's own rows are those of its docsize table)
        out["fts"] = db.execute("SELECT d.id, r.text FROM results_fts_docsize d"
                                " JOIN results r ON r.id = d.id ORDER BY d.id").fetchall()
        out["fts_expected"] = db.execute(
            "SELECT id, text FROM results WHERE status = 'ok' AND task = 'caption'"
            " AND text IS NOT NULL ORDER BY id").fetchall()
        return out
    finally:
        db.close()


def differences(a, b, limit=5):
    """Lines describing how catalogues a and b (dumps) differ on the compared tables."""
    lines = []
    for table in ("files", "results", "boxes"):
        ra, rb = set(a[table]), set(b[table])
        if len(a[table]) != len(b[table]):
            lines.append("%s: %d rows vs %d" % (table, len(a[table]), len(b[table])))
        for row in sorted(ra - rb, key=repr)[:limit]:
            lines.append("%s only in the first: %r" % (table, row))
        for row in sorted(rb - ra, key=repr)[:limit]:
            lines.append("%s only in the second: %r" % (table, row))
    return lines
