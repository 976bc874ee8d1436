"""Batches (``pg_batch``): many sessions of one model generated together (docs/batch.md).

Kept apart from ``__init__`` so the session wrapper stays readable; everything here is
re-exported by the package.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, byref, c_int, c_uint32
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from . import _ffi
from ._ffi import PaliGemmaError, lib

if TYPE_CHECKING:  # pragma: no cover
    from . import Model, Session


def _address(ptr: Any) -> int:
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


class Batch:
    """A ``pg_batch``: sessions added to it are generated together, one pass over the
    weights per token for all of them (continuous batching: add and remove at any time).

    The thread that calls :meth:`step` (or iterates :meth:`run`) runs the token callbacks.
    :meth:`add`, :meth:`remove` and :meth:`take_finished` may come from other threads. A
    session in a batch is busy: its other methods raise ``PaliGemmaError`` (BAD_STATE) until
    it is taken back (:meth:`take_finished`, :meth:`run`, :meth:`remove`).
    """

    def __init__(self, model: "Model", *, max_batch: int = 0, max_sessions: int = 0,
                 max_kv_bytes: int = 0, prefill_ratio: float = 0.0) -> None:
        """Creates an empty batch on ``model``.

        Args:
            max_batch: sessions decoded together (1..64); 0 = 8.
            max_sessions: sessions held at once, waiting ones included; 0 = 2 x max_batch.
            max_kv_bytes: cap on the summed KV caches; 0 = none. Over it, :meth:`add`
                raises PaliGemmaError LIMIT.
            prefill_ratio: prefill time per unit of decode time while others decode; 0 = 8.
        """
        opts = _ffi.pg_batch_options()
        lib.pg_batch_options_init(byref(opts), ctypes.sizeof(opts))
        opts.max_batch = int(max_batch)
        opts.max_sessions = int(max_sessions)
        opts.max_kv_bytes = int(max_kv_bytes)
        opts.prefill_ratio = float(prefill_ratio)
        h = POINTER(_ffi.pg_batch)()
        lib.pg_batch_new(byref(h), model._ptr(), byref(opts))
        self._h = h
        self.model = model
        # session address -> (Session, what must stay alive while it is inside: options,
        # stop strings, callback, the callback's stored exception)
        self._members: Dict[int, Tuple["Session", Any, List[BaseException]]] = {}

    def _ptr(self) -> Any:
        if not self._h:
            raise ValueError("Batch is closed")
        return self._h

    def __len__(self) -> int:
        """Sessions in the batch that have not finished."""
        return int(lib.pg_batch_count(self._h)) if self._h else 0

    def add(self, session: "Session", *, max_new_tokens: Optional[int] = None,
            temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
            stop: Union[None, str, List[str]] = None, on_token: Any = None) -> None:
        """Adds a session whose image and prompt are set, to generate with these options
        (as :meth:`Session.generate`; ``on_token`` runs on the stepping thread)."""
        opts, keep = session._generate_options(max_new_tokens, temperature, top_k, top_p,
                                               seed, stop, 0)
        failure: List[BaseException] = []
        callback = None
        if on_token is not None:
            from . import _token_from_event

            def trampoline(_user: Any, event: Any) -> int:
                try:
                    return 1 if on_token(_token_from_event(event.contents)) else 0
                except BaseException as exc:  # re-raised by take_finished
                    failure.append(exc)
                    return 1

            callback = _ffi.pg_token_fn(trampoline)
            opts.on_token = callback
        h = session._enter_busy()
        try:
            lib.pg_batch_add(self._ptr(), h, byref(opts))
        except BaseException:
            session._busy.release()
            raise
        self._members[_address(h)] = (session, (opts, keep, callback), failure)

    def _release(self, ptr: Any, status: int) -> Tuple["Session", Optional[BaseException]]:
        session, _keep, failure = self._members.pop(_address(ptr))
        session._busy.release()
        error: Optional[BaseException] = None
        if failure:
            error = failure[0]
        elif status != _ffi.PG_OK:
            from . import status_string

            message = lib.pg_session_last_error(ptr)
            error = PaliGemmaError(status, message.decode("utf-8", "replace") if message else "",
                                   "pg_batch_step", status_string(status))
        return session, error

    def remove(self, session: "Session") -> None:
        """Takes a session out before it finished (its generation ends as interrupted)."""
        h = session._ptr()
        lib.pg_batch_remove(self._ptr(), h)
        if _address(h) in self._members:
            self._release(h, _ffi.PG_OK)

    def step(self) -> int:
        """One step (one decode pass, then a slice of prefill work). Returns the sessions
        still running."""
        n = c_uint32()
        lib.pg_batch_step(self._ptr(), byref(n))
        return int(n.value)

    def take_finished(self, timeout_ms: int = 0
                      ) -> Optional[Tuple["Session", Optional[BaseException]]]:
        """The earliest finished session and its error (None when it succeeded), or None
        when none finished within ``timeout_ms``."""
        s = POINTER(_ffi.pg_session)()
        result = c_int()
        status = lib.pg_batch_take_finished(self._ptr(), int(timeout_ms), byref(s),
                                            byref(result))
        if status == _ffi.PG_ERR_NOT_FOUND or not s:
            return None
        return self._release(s, result.value)

    def run(self) -> Iterator[Tuple["Session", Optional[BaseException]]]:
        """Steps until every session finished, yielding ``(session, error)`` as each one
        finishes (error None on success; the text is in ``session.text``)."""
        while True:
            got = self.take_finished()
            if got is not None:
                yield got
                continue
            if len(self) == 0:
                return
            self.step()

    def close(self) -> None:
        """Frees the batch; sessions still inside end as interrupted and are usable again."""
        h, self._h = self._h, None
        if h:
            lib.pg_batch_free(h)
            for session, _keep, _failure in self._members.values():
                session._busy.release()
            self._members.clear()

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


@dataclass(frozen=True)
class BatchResult:
    """One image of :meth:`Model.caption_many`."""

    index: int  #: position in the input
    path: str  #: the input as given (a path, or ``repr`` of another image source)
    text: str  #: the generated text ("" on error)
    ids: Tuple[int, ...]  #: generated ids
    error: Optional[BaseException]  #: None on success
    ttft_ms: float = 0.0
    decode_tokens: int = 0


def caption_many(model: "Model", images: Iterable[Any], *, batch: int = 0,
                 prompt: str = "caption en", max_new_tokens: Optional[int] = None,
                 ordered: bool = False, **generate: Any) -> Iterator[BatchResult]:
    """Runs ``prompt`` on every image through one :class:`Batch` of ``batch`` sessions and
    yields a :class:`BatchResult` per image as it finishes (in input order with
    ``ordered=True``). An image that cannot be opened gives a result with ``error`` set and
    the run goes on. ``batch`` 0 = 8."""
    from . import Session

    width = int(batch) if batch else 8
    if width < 1 or width > 64:
        raise ValueError("batch must be in 1..64")
    sources = iter(enumerate(images))
    pending: Dict[int, BatchResult] = {}
    next_out = 0
    with Batch(model, max_batch=width, max_sessions=width + 1) as b:
        idle: List["Session"] = []
        owned: List["Session"] = []
        inputs: Dict[int, Tuple[int, str]] = {}
        exhausted = False
        try:
            while True:
                # keep width + 1 sessions inside: one prefills while the others decode
                while not exhausted and len(inputs) < width + 1:
                    item = next(sources, None)
                    if item is None:
                        exhausted = True
                        break
                    index, source = item
                    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) \
                        else repr(source)
                    session = idle.pop() if idle else Session(model)
                    if session not in owned:
                        owned.append(session)
                    try:
                        session.set_image(source)
                        session.set_prompt(prompt)
                        b.add(session, max_new_tokens=max_new_tokens, **generate)
                    except (PaliGemmaError, OSError, ValueError, TypeError) as exc:
                        idle.append(session)
                        pending[index] = BatchResult(index, label, "", (), exc)
                        continue
                    inputs[id(session)] = (index, label)
                got = b.take_finished()
                if got is None:
                    if not inputs and exhausted and not pending:
                        return
                    if inputs:
                        b.step()
                else:
                    session, error = got
                    index, label = inputs.pop(id(session))
                    t = session.timings
                    pending[index] = BatchResult(
                        index, label, session.text if error is None else "",
                        tuple(session.output_ids) if error is None else (), error,
                        t.ttft_ms, t.decode_tokens)
                    idle.append(session)
                # hand out what is ready
                if ordered:
                    while next_out in pending:
                        yield pending.pop(next_out)
                        next_out += 1
                else:
                    for index in sorted(pending):
                        yield pending.pop(index)
                if exhausted and not inputs and not pending:
                    return
        finally:
            b.close()
            for session in owned:
                session.close()
