"""What a worker does with a chunk of files: decode each image once, run every task's prompt
on it through one ``paligemma.Batch``, and return plain records (dicts of str/int/float/None
and lists, cheap to pickle) for the client to write. Nothing here touches the catalogue.

A record per file::

    {"path", "size", "mtime_ns", "hash", "width", "height", "error",
     "model_id", "model_variant", "worker",
     "results": [{"task", "prompt", "status", "error", "text", "token_ids", "stop_reason",
                  "preprocess_ms", "vision_ms", "prefill_ms", "decode_ms",
                  "prefill_tokens", "decode_tokens",
                  "boxes": [{"label", "x_min", "y_min", "x_max", "y_max",
                             "nx_min", "ny_min", "nx_max", "ny_max"}]}]}

``error`` is set (and width/height None) when the file cannot be read or decoded; every task
then has a result with status "error" (a corrupt image counts as done, as in ``pg index``).
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import paligemma

from . import _native

#: (task name, prompt): ("caption", "caption en"), ("detect", "detect cat ; dog").
Task = Tuple[str, str]

MAX_TASKS = 16


def parse_tasks(spec: Optional[str], caption_prompt: Optional[str] = None) -> List[Task]:
    """``pg index --tasks``: "caption,detect:person ; dog,segment:cat" -> (name, prompt)
    pairs, the prompt being what the model sees and what the resume key holds."""
    if caption_prompt is not None and not caption_prompt:
        raise ValueError("the caption prompt is empty")
    tasks: List[Task] = []
    for part in (spec if spec is not None else "caption").split(","):
        name, colon, arg = part.partition(":")
        name, arg = name.strip(" \t"), arg.strip(" \t")
        if name == "caption":
            if colon:
                raise ValueError("task 'caption' takes no ':' argument (use the caption prompt)")
            prompt = caption_prompt or "caption en"
        elif name in ("detect", "segment"):
            if not arg:
                raise ValueError("task '%s' needs objects: %s:\"cat ; dog\"" % (name, name))
            prompt = "%s %s" % (name, arg)
        else:
            raise ValueError("unknown task '%s' (known: caption, detect:OBJECTS, "
                             "segment:OBJECTS)" % name)
        if any(p == prompt for _, p in tasks):
            raise ValueError("task '%s' is given twice" % prompt)
        tasks.append((name, prompt))
        if len(tasks) > MAX_TASKS:
            raise ValueError("more than %d tasks" % MAX_TASKS)
    return tasks


def error_text(exc: BaseException) -> str:
    """The library's own message for a failure (what ``pg index`` stores), else str()."""
    message = getattr(exc, "message", "")
    return message if isinstance(message, str) and message else str(exc)


def _file_facts(path: str) -> Dict[str, Any]:
    record: Dict[str, Any] = {"path": path, "size": None, "mtime_ns": None, "hash": None,
                              "width": None, "height": None, "error": None, "results": []}
    try:
        st = os.stat(path)
        record["size"], record["mtime_ns"] = st.st_size, st.st_mtime_ns
        record["hash"] = _native.hash_file(path)
    except (OSError, paligemma.PaliGemmaError) as exc:
        record["error"] = error_text(exc)
    return record


def _error_result(task: Task, message: str) -> Dict[str, Any]:
    return {"task": task[0], "prompt": task[1], "status": "error", "error": message,
            "text": None, "token_ids": None, "stop_reason": None, "preprocess_ms": None,
            "vision_ms": None, "prefill_ms": None, "decode_ms": None,
            "prefill_tokens": None, "decode_tokens": None, "boxes": []}


def _f32(value: float) -> float:
    return ctypes.c_float(value).value


def _boxes(task: str, text: str, width: int, height: int) -> List[Dict[str, Any]]:
    if task not in ("detect", "segment"):
        return []
    rows = []
    for d in paligemma.parse_detections(text, width, height):
        x0, y0, x1, y1 = d.box  # single precision, as pg_detection_info holds them
        # nx = x / width in single precision too, as pg index stores it (a double division
        # rounded once to float is the float division: the same REAL in both catalogues)
        rows.append({"label": d.label, "x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1,
                     "nx_min": _f32(x0 / width), "ny_min": _f32(y0 / height),
                     "nx_max": _f32(x1 / width), "ny_max": _f32(y1 / height)})
    return rows


def _ok_result(task: Task, session: "paligemma.Session", width: int,
               height: int) -> Dict[str, Any]:
    t = session.timings
    # Cut at a NUL character (a <0x00> byte token): SQLite's functions, FTS5 and pg index
    # (which binds C strings) all stop there; token_ids keep the whole answer.
    text = session.text.split("\0", 1)[0]
    return {"task": task[0], "prompt": task[1], "status": "ok", "error": None, "text": text,
            "token_ids": json.dumps(list(session.output_ids), separators=(",", ":")),
            "stop_reason": int(session.stop_reason), "preprocess_ms": t.preprocess_ms,
            "vision_ms": t.vision_ms, "prefill_ms": t.prefill_ms, "decode_ms": t.decode_ms,
            "prefill_tokens": t.prefill_tokens, "decode_tokens": t.decode_tokens,
            "boxes": _boxes(task[0], text, width, height)}


def run_files(model: "paligemma.Model", files: Sequence[Tuple[str, Sequence[Task]]], *,
              batch: int = 4, max_new_tokens: int = 64) -> List[Dict[str, Any]]:
    """Runs each file's tasks through one Batch of ``batch`` sessions (width + 1 inside, so
    one prefills while the others decode) and returns one record per file, input order.
    A file with no task left still gets its record (hash, size), for its ``files`` row."""
    width = int(batch)
    if width < 1 or width > 64:
        raise ValueError("batch must be in 1..64")
    records = [_file_facts(path) for path, _ in files]
    jobs: List[Tuple[int, Task]] = []  # (record index, task), in order
    images: Dict[int, "paligemma.Image"] = {}
    try:
        for i, (path, tasks) in enumerate(files):
            rec = records[i]
            if rec["error"] is None:
                try:
                    # Decoded once, shared by the file's sessions (set_image preprocesses now).
                    img = paligemma.Image.open(path)
                    rec["width"], rec["height"] = img.width, img.height
                    if tasks:
                        images[i] = img
                    else:
                        img.close()
                except (paligemma.PaliGemmaError, OSError, ValueError) as exc:
                    rec["error"] = error_text(exc)
            if rec["error"] is not None:
                rec["results"] = [_error_result(t, rec["error"]) for t in tasks]
            else:
                jobs.extend((i, t) for t in tasks)
        _run_jobs(model, jobs, images, records, width, max_new_tokens)
    finally:
        for img in images.values():
            img.close()
    for rec, (_, tasks) in zip(records, files):  # results in the order of the tasks given
        order = {t[1]: k for k, t in enumerate(tasks)}
        rec["results"].sort(key=lambda r: order[r["prompt"]])
    return records


def _run_jobs(model: "paligemma.Model", jobs: List[Tuple[int, Task]],
              images: Dict[int, "paligemma.Image"], records: List[Dict[str, Any]],
              width: int, max_new_tokens: int) -> None:
    remaining: Dict[int, int] = {}
    for i, _ in jobs:
        remaining[i] = remaining.get(i, 0) + 1
    queue = iter(jobs)
    idle: List["paligemma.Session"] = []
    owned: List["paligemma.Session"] = []
    inside: Dict[int, Tuple[int, Task]] = {}  # id(session) -> job
    exhausted = False

    def finish(i: int) -> None:
        remaining[i] -= 1
        if remaining[i] == 0:  # last task of this file: its pixels are no longer needed
            images.pop(i).close()

    with paligemma.Batch(model, max_batch=width, max_sessions=width + 1) as b:
        try:
            while True:
                while not exhausted and len(inside) < width + 1:
                    job = next(queue, None)
                    if job is None:
                        exhausted = True
                        break
                    i, task = job
                    rec = records[i]
                    session = idle.pop() if idle else paligemma.Session(model)
                    if session not in owned:
                        owned.append(session)
                    try:
                        session.set_image(images[i])
                        session.set_prompt(task[1])
                        b.add(session, max_new_tokens=max_new_tokens)
                    except (paligemma.PaliGemmaError, ValueError) as exc:
                        idle.append(session)
                        rec["results"].append(_error_result(task, error_text(exc)))
                        finish(i)
                        continue
                    inside[id(session)] = job
                if not inside:
                    return
                got = b.take_finished()
                if got is None:
                    b.step()
                    continue
                session, error = got
                i, task = inside.pop(id(session))
                rec = records[i]
                if error is None:
                    rec["results"].append(_ok_result(task, session, rec["width"],
                                                     rec["height"]))
                else:
                    rec["results"].append(_error_result(task, error_text(error)))
                idle.append(session)
                finish(i)
        finally:
            b.close()
            for session in owned:
                session.close()
