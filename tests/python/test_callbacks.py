"""Load progress and log callbacks: called, able to abort, exceptions re-raised or contained."""
import pytest

import paligemma
from paligemma import PaliGemmaError, Status


def test_progress_reaches_one(tiny_dir):
    fractions = []
    with paligemma.Model(tiny_dir, progress=fractions.append):
        pass
    assert fractions and fractions[-1] == pytest.approx(1.0)
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)


def test_progress_returning_true_aborts(tiny_dir):
    with pytest.raises(PaliGemmaError) as info:
        paligemma.Model(tiny_dir, progress=lambda fraction: True)
    assert info.value.status == Status.CANCELLED
    assert info.value.message


def test_exception_in_progress_is_reraised(tiny_dir):
    class Stop(Exception):
        pass

    def progress(fraction):
        raise Stop("abort the load")

    with pytest.raises(Stop):
        paligemma.Model(tiny_dir, progress=progress)


def test_model_log_callback(tiny_dir):
    messages = []
    with paligemma.Model(tiny_dir, log=lambda level, text: messages.append((level, text)),
                         log_level=paligemma._ffi.PG_LOG_DEBUG):
        pass
    assert messages, "loading logs at least an info line"
    assert all(1 <= level <= 4 and isinstance(text, str) for level, text in messages)


def test_exceptions_in_log_callbacks_are_contained(tiny_dir):
    def bad_sink(level, text):
        raise RuntimeError("a broken log sink must not break the library")

    with paligemma.Model(tiny_dir, log=bad_sink, log_level=paligemma._ffi.PG_LOG_DEBUG) as m:
        assert m.info.vocab_size == 2240
