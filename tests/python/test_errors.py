"""Library errors become PaliGemmaError with the status and the library's message."""
import os

import pytest

import paligemma
from paligemma import Image, PaliGemmaError, Status

from conftest import loaded_model


def test_missing_model_folder(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(PaliGemmaError) as info:
        loaded_model(paligemma, missing)
    err = info.value
    assert err.status in (Status.NOT_FOUND, Status.IO)
    assert err.function == "pg_model_load"
    assert "no-such-model" in err.message  # the message names what is missing
    assert err.message in str(err)


def test_config_that_is_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{ this is not json")
    with pytest.raises(PaliGemmaError) as info:
        loaded_model(paligemma, str(tmp_path))
    assert info.value.status == Status.FORMAT
    assert "config.json" in info.value.message


def test_bad_backend_name(tiny_dir):
    with pytest.raises(PaliGemmaError) as info:
        loaded_model(paligemma, tiny_dir, backend="no-such-backend")
    assert info.value.status in (Status.NOT_FOUND, Status.INVALID_ARGUMENT, Status.UNSUPPORTED)
    assert "no-such-backend" in info.value.message


def test_image_errors(tmp_path):
    with pytest.raises(PaliGemmaError) as info:
        Image.open(str(tmp_path / "missing.png"))
    assert info.value.status in (Status.NOT_FOUND, Status.IO)
    assert "missing.png" in info.value.message
    with pytest.raises(PaliGemmaError) as info:
        Image.from_bytes(b"this is neither a PNG nor a JPEG")
    assert info.value.status in (Status.FORMAT, Status.UNSUPPORTED)
    assert info.value.message


def test_wrong_python_inputs_are_python_errors():
    with pytest.raises(TypeError):
        paligemma.Image.from_array(__import__("numpy").zeros((4, 4, 3), dtype="float32"))
    with pytest.raises(ValueError):
        paligemma.Image.from_array(__import__("numpy").zeros((4, 4, 2), dtype="uint8"))
    with pytest.raises(TypeError):
        paligemma.Image(12345)


def test_session_error_uses_the_session_message(tiny_model):
    with paligemma.Session(tiny_model) as session:
        with pytest.raises(PaliGemmaError) as info:
            session.generate("caption en", max_new_tokens=4)  # no image set
        assert info.value.status == Status.BAD_STATE
        assert info.value.function == "pg_session_generate"
        assert info.value.message and info.value.message == session.last_error


def test_out_of_range_ids(tiny_model):
    with pytest.raises(PaliGemmaError) as info:
        tiny_model.detokenize([tiny_model.tokenizer.vocab_size + 5])
    assert info.value.status == Status.INVALID_ARGUMENT


def test_closed_objects_refuse_use_and_close_is_idempotent(tiny_dir, model_images):
    model = loaded_model(paligemma, tiny_dir)
    session = paligemma.Session(model)
    model.close()
    model.close()
    assert model.closed
    with pytest.raises(ValueError):
        model.info
    with pytest.raises(ValueError):
        paligemma.Session(model)
    # The session keeps the C model alive: it still works after model.close().
    text = session.generate("caption en", image=os.path.join(model_images, "coffee.png"),
                            max_new_tokens=2)
    assert isinstance(text, str) and 1 <= len(session.output_ids) <= 2
    session.close()
    session.close()
    with pytest.raises(ValueError):
        session.set_prompt("caption en")
