"""Shared fixtures of the Python binding tests (run by `meson test --suite python`).

Environment (set by tests/python/meson.build): PALIGEMMA_LIBRARY = the built shared library,
PYTHONPATH = bindings/python, PG_TEST_DATA_DIR = tests/data, PG_SHARED_FIXTURES_DIR =
../shared/fixtures (optional), PG_TOOL = the built `pg` tool.
Tests that need data which is absent skip with the reason; the suite never collects nothing.
"""
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("PG_TEST_DATA_DIR") or os.path.join(HERE, "..", "data")


def data_path(*parts):
    return os.path.join(DATA, *parts)


def pytest_sessionfinish(session, exitstatus):
    # pytest exits 5 when it collected no test at all; that must never pass silently.
    if exitstatus == 5:
        session.exitstatus = 1


def _need(path, what):
    if not os.path.exists(path):
        pytest.skip("%s not found at %s" % (what, path))
    return path


@pytest.fixture(scope="session")
def tiny_dir():
    """The tiny bf16 checkpoint folder (tests/data/models/tiny/bf16)."""
    return _need(data_path("models", "tiny", "bf16", "config.json"),
                 "tiny checkpoint").rsplit(os.sep, 1)[0]


@pytest.fixture(scope="session")
def tiny_f32_dir():
    return _need(data_path("models", "tiny", "f32", "config.json"),
                 "tiny f32 checkpoint").rsplit(os.sep, 1)[0]


@pytest.fixture(scope="session")
def golden_tiny():
    """(cases.json dict, folder) of the tiny goldens."""
    path = _need(data_path("golden", "tiny", "cases.json"), "tiny goldens")
    with open(path, encoding="utf-8") as f:
        return json.load(f), os.path.dirname(path)


@pytest.fixture(scope="session")
def model_images():
    """The folder of the images the goldens use."""
    return _need(data_path("image", "models"), "golden input images")


@pytest.fixture(scope="session")
def tokenizer_goldens():
    path = _need(data_path("python", "tiny_tokenizer_tests.json"), "tokenizer goldens")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["tests"]


@pytest.fixture(scope="session")
def paligemma():
    import paligemma as pg

    return pg


def loaded_model(pg, path, **kwargs):
    """Loads a model, skipping (with the library's message) while the library cannot yet."""
    try:
        return pg.Model(path, **kwargs)
    except AttributeError as exc:  # the library does not export the function yet
        pytest.skip("library incomplete: %s" % exc)


@pytest.fixture(scope="session")
def tiny_model(paligemma, tiny_dir):
    model = loaded_model(paligemma, tiny_dir, threads=2)
    yield model
    model.close()


def under_asan():
    return "asan" in os.environ.get("LD_PRELOAD", "")
