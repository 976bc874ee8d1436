"""tokenize/detokenize through Python give the golden ids of the tiny tokenizer."""
import pytest

import paligemma
from paligemma import Tokenizer


def test_goldens(tiny_model, tokenizer_goldens):
    tok = tiny_model.tokenizer
    for case in tokenizer_goldens:
        assert tok.tokenize(case["text"]) == case["ids"], repr(case["text"])
        assert tok.detokenize(case["ids"]) == case["decoded"], repr(case["text"])


def test_bytes_input_and_bos(tiny_model):
    tok = tiny_model.tokenizer
    assert tok.tokenize(b"caption en\n") == [534, 491, 108]
    assert tok.tokenize("caption en\n", add_bos=True) == [2, 534, 491, 108]
    assert tok.bos_id == 2 and tok.eos_id == 1 and tok.image_id == 2176
    assert tok.vocab_size >= 2176


def test_special_tokens_as_text(tiny_model):
    tok = tiny_model.tokenizer
    assert tok.tokenize("<eos>") == [1]
    # Without special-token parsing "<eos>" is ordinary text: several pieces, none of them 1.
    plain = tok.tokenize("<eos>", parse_special=False)
    assert 1 not in plain and len(plain) > 1
    assert tok.detokenize(plain) == "<eos>"
    assert tok.detokenize([2, 534, 491, 1], skip_special=True) == "caption en"


def test_pieces(tiny_model):
    tok = tiny_model.tokenizer
    assert tok.piece(491) == "\u2581en"
    assert tok.token_id("\u2581en") == 491
    assert tok.piece(1024) == "<loc0000>"
    with pytest.raises(paligemma.PaliGemmaError) as info:
        tok.token_id("no such piece at all")
    assert info.value.status == paligemma.Status.NOT_FOUND


def test_long_and_invalid_inputs(tiny_model):
    tok = tiny_model.tokenizer
    text = "x" * 5000 + " \U0001F642" * 300  # the size query path (buffer grows)
    ids = tok.tokenize(text)
    assert tok.detokenize(ids) == text
    # Invalid UTF-8 becomes U+FFFD before encoding (SentencePiece behaviour).
    assert tok.detokenize(tok.tokenize(b"a\xffb")) == "a\ufffdb"


def test_standalone_tokenizer(tiny_dir):
    with Tokenizer(tiny_dir) as tok:
        assert tok.tokenize("detect cat\n") == [533, 690, 108]
    assert tok.closed
    tok.close()


def test_model_tokenizer_dies_with_the_model(tiny_dir):
    model = paligemma.Model(tiny_dir, tokenizer_only=True)
    tok = model.tokenizer
    assert tok.tokenize("ocr\n") == [582, 108]
    model.close()
    with pytest.raises(ValueError):
        tok.tokenize("ocr\n")
