"""The Dask side: a WorkerPlugin that loads the model once per worker process, and the task
function that runs a chunk of files on that model."""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from distributed import WorkerPlugin, get_worker

import paligemma

from . import _native
from ._work import Task, run_files


def plugin_name(model_path: str, threads: int, weight_dtype: Optional[str],
                backend: Optional[str]) -> str:
    """One plugin per distinct model load, so two jobs with different models coexist."""
    key = "\0".join([model_path, str(threads), str(weight_dtype), str(backend)])
    return "paligemma-model-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


class ModelPlugin(WorkerPlugin):
    """Loads ``paligemma.Model(model_path, ...)`` in ``setup`` (on each worker, when it is
    registered with ``Client.register_worker_plugin`` and on every worker that joins later)
    and frees it in ``teardown``. Only the arguments travel to the workers: the model path
    must name the same weights on every machine.

    ``threads`` 0 = every core of the worker's machine: run one worker process per machine
    with ``--nthreads 1`` so one task at a time owns them (docs/distributed.md).
    """

    def __init__(self, model_path: str, *, threads: int = 0,
                 weight_dtype: Optional[str] = None, backend: Optional[str] = None) -> None:
        self.model_path = str(model_path)
        self.threads = int(threads)
        self.weight_dtype = weight_dtype
        self.backend = backend
        self.name = plugin_name(self.model_path, self.threads, weight_dtype, backend)
        self.model: Optional[paligemma.Model] = None
        self.model_id = ""
        self.variant = ""

    def __getstate__(self) -> Dict[str, Any]:  # never ship a loaded model
        state = dict(self.__dict__)
        state["model"] = None
        return state

    def setup(self, worker: Any) -> None:
        model = paligemma.Model(self.model_path, threads=self.threads,
                                weight_dtype=self.weight_dtype, backend=self.backend)
        try:
            self.model_id = _native.model_id(model)
            self.variant = model.info.variant
        except BaseException:
            model.close()
            raise
        self.model = model

    def teardown(self, worker: Any) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()


def _plugin(name: str) -> ModelPlugin:
    worker = get_worker()
    plugin = worker.plugins.get(name)
    if plugin is None or plugin.model is None:
        raise RuntimeError("worker %s has no loaded model (plugin %s not set up)"
                           % (worker.address, name))
    return plugin


def identity(name: str) -> Tuple[str, str]:
    """(model_id, variant) of this worker's model: run with ``Client.run``."""
    plugin = _plugin(name)
    return plugin.model_id, plugin.variant


def index_chunk(name: str, files: Sequence[Tuple[str, Sequence[Task]]], batch: int,
                max_new_tokens: int) -> List[Dict[str, Any]]:
    """The task: records of ``files`` ((path, tasks) pairs) on this worker's model."""
    plugin = _plugin(name)
    assert plugin.model is not None
    records = run_files(plugin.model, files, batch=batch, max_new_tokens=max_new_tokens)
    address = get_worker().address
    for rec in records:
        rec["model_id"] = plugin.model_id
        rec["model_variant"] = plugin.variant
        rec["worker"] = address
    return records
