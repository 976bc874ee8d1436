"""Prompt ids, prefill, teacher forcing and intermediate tensors through Python."""
import os

import numpy as np
import pytest

from paligemma import Session, _ffi

LOGIT_TOL = 5e-3  # the fixtures' README: float32 implementations agree to this on logits


def _case(golden_tiny, case_id):
    cases = {c["id"]: c for c in golden_tiny[0]["cases"]}
    case = cases[case_id]
    folder = os.path.join(golden_tiny[1], case_id)
    return case, {name: np.load(os.path.join(folder, name + ".npy"))
                  for name in ("input_ids", "generated_ids", "prefill_logits_last")}


def test_prefill_logits_match_golden(tiny_model, golden_tiny, model_images):
    case, gold = _case(golden_tiny, "cat_chelsea__caption_en")
    with Session(tiny_model) as session:
        session.set_image(os.path.join(model_images, case["image"]))
        session.set_prompt(case["prompt"])
        session.prefill()
        logits = session.logits()
    assert logits.shape == gold["prefill_logits_last"].shape
    assert np.max(np.abs(logits - gold["prefill_logits_last"])) <= LOGIT_TOL


def test_prompt_ids_give_the_same_generation(tiny_model, golden_tiny, model_images):
    case, gold = _case(golden_tiny, "coffee__caption_en")
    n_image = golden_tiny[0]["num_image_tokens"]
    with Session(tiny_model) as session:
        session.set_image(os.path.join(model_images, case["image"]))
        session.generate(case["prompt"], max_new_tokens=8)
        by_text = session.output_ids
        session.set_prompt_ids(gold["input_ids"][n_image:])  # <bos> prompt "\n", verbatim
        session.generate(max_new_tokens=8)
        assert session.prompt_ids == gold["input_ids"].tolist()
        assert session.output_ids == by_text


def test_teacher_forcing_follows_the_golden_greedy_path(tiny_model, golden_tiny, model_images):
    case, gold = _case(golden_tiny, "cat_chelsea__detect_cat")
    ids = gold["generated_ids"][:case["robust_prefix_len"]].tolist()
    with Session(tiny_model) as session:
        session.set_image(os.path.join(model_images, case["image"]))
        session.set_prompt(case["prompt"])
        session.prefill()
        for step in range(6):
            assert int(np.argmax(session.logits())) == ids[step], step
            session.feed(ids[step:step + 1])


def test_kept_tensors(tiny_model, golden_tiny, model_images):
    case, _ = _case(golden_tiny, "cat_chelsea__caption_en")
    pixels = os.path.join(golden_tiny[1], case["image_dir"], "pixel_values.npy")
    with Session(tiny_model, keep_tensors=True) as session:
        session.set_image(os.path.join(model_images, case["image"]))
        session.set_prompt(case["prompt"])
        session.prefill()
        got = session.tensor(_ffi.PG_TENSOR_PIXEL_VALUES)
        info = tiny_model.info
        assert session.tensor(_ffi.PG_TENSOR_VISION_OUT).shape == (info.image_tokens,
                                                                    info.vision_hidden)
    want = np.load(pixels)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-6


def test_out_of_range_prompt_ids_are_python_errors(tiny_model):
    with Session(tiny_model) as session:
        with pytest.raises(OverflowError):
            session.set_prompt_ids([2, 2**40, 108])
