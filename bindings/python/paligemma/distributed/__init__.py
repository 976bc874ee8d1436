"""Scale-out on Dask distributed: caption / detect an archive across machines into the
``pg index`` catalogue (docs/distributed.md, docs/index-schema.md).

- :class:`ModelPlugin`: a ``distributed.WorkerPlugin`` that loads the model once per worker
  (``Client.register_worker_plugin``); run one worker per machine with ``--nthreads 1``.
- :func:`index_chunk`: the task, a chunk of files through one ``paligemma.Batch`` on the
  worker's model, returning plain records; :func:`run_files` does the same in-process.
- :func:`index`: the client, the one SQLite writer; resumable by content hash (XXH3-128,
  from the library), no duplicate rows when a worker dies and its tasks rerun elsewhere.
- ``python3 -m paligemma.distributed index --scheduler ADDR -m MODEL DIR...`` (or
  ``--local N`` for a LocalCluster on this machine).

The library grows no cluster code: everything distributed is Dask's.
"""

from __future__ import annotations

from ._catalogue import Catalogue, Walk, walk
from ._index import IndexStats, default_db, index, start_model
from ._native import CatalogueUnavailable, available
from ._plugin import ModelPlugin, identity, index_chunk, plugin_name
from ._work import parse_tasks, run_files

__all__ = ["ModelPlugin", "index_chunk", "identity", "plugin_name", "run_files",
           "parse_tasks", "index", "start_model", "IndexStats", "default_db", "Catalogue",
           "Walk", "walk", "available", "CatalogueUnavailable"]
