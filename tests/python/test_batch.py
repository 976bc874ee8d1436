"""Batches through Python: the same ids as alone, results as they finish, errors per image."""
import os
import threading

import pytest

import paligemma
from paligemma import Batch, PaliGemmaError, Session, Status, StopReason

from test_generate import expected_ids


def test_batch_matches_alone(tiny_dir, golden_tiny, model_images):
    cases, golden_dir = golden_tiny
    with paligemma.Model(tiny_dir, threads=2) as model:
        sessions = [Session(model) for _ in cases["cases"]]
        with Batch(model, max_batch=4, max_sessions=len(sessions)) as batch:
            for s, case in zip(sessions, cases["cases"]):
                s.set_image(os.path.join(model_images, case["image"]))
                s.set_prompt(case["prompt"])
                batch.add(s, max_new_tokens=case["n_steps"])
            with pytest.raises(PaliGemmaError) as err:
                sessions[0].set_prompt("caption en")  # busy while inside
            assert err.value.status == Status.BAD_STATE
            done = [s for s, error in batch.run() if error is None]
        assert sorted(map(id, done)) == sorted(map(id, sessions))
        for s, case in zip(sessions, cases["cases"]):
            want, stops = expected_ids(golden_dir, case)
            assert s.output_ids[:len(want)] == want, case["id"]
            if stops:
                assert s.output_ids == want and s.stop_reason == StopReason.EOS
            s.close()


def test_caption_many_in_order_with_a_bad_image(tiny_dir, golden_tiny, model_images, tmp_path):
    cases, _ = golden_tiny
    images = sorted({c["image"] for c in cases["cases"]})
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths = [os.path.join(model_images, i) for i in images]
    paths.insert(1, str(bad))
    with paligemma.Model(tiny_dir, threads=2) as model:
        alone = {}
        with Session(model) as s:
            for p in paths[:1] + paths[2:]:
                s.generate("caption en", image=p, max_new_tokens=12)
                alone[p] = s.output_ids
        results = list(model.caption_many(paths, batch=2, max_new_tokens=12, ordered=True))
    assert [r.index for r in results] == list(range(len(paths)))
    assert [r.path for r in results] == paths
    assert results[1].error is not None and results[1].text == ""
    for r in results[:1] + results[2:]:
        assert r.error is None, r.error
        assert list(r.ids) == alone[r.path], r.path


def test_on_token_and_interrupt_of_one_session(tiny_dir, model_images):
    image = os.path.join(model_images, os.listdir(model_images)[0])
    with paligemma.Model(tiny_dir, threads=2) as model, Batch(model, max_batch=2) as batch:
        a, b = Session(model), Session(model)
        for s in (a, b):
            s.set_image(image)
            s.set_prompt("caption en")
        seen = []
        batch.add(a, max_new_tokens=20, on_token=lambda t: seen.append(t.id) or len(seen) == 3)
        batch.add(b, max_new_tokens=20, stop=None)
        results = dict((id(s), e) for s, e in batch.run())
        assert results[id(a)] is None and results[id(b)] is None
        assert len(seen) == 3 and a.stop_reason == StopReason.CALLBACK
        assert len(b.output_ids) == 20 or b.stop_reason == StopReason.EOS
        a.close()
        b.close()


def test_add_from_another_thread_while_stepping(tiny_dir, model_images):
    image = os.path.join(model_images, os.listdir(model_images)[0])
    with paligemma.Model(tiny_dir, threads=1) as model, Batch(model, max_batch=3) as batch:
        sessions = [Session(model) for _ in range(6)]
        for s in sessions:
            s.set_image(image)
            s.set_prompt("caption en")

        def adder():
            for s in sessions:
                batch.add(s, max_new_tokens=8)

        t = threading.Thread(target=adder)
        t.start()
        finished = []
        for _ in range(100000):  # bounded
            got = batch.take_finished(timeout_ms=1)
            if got is not None:
                finished.append(got)
            if len(finished) == len(sessions):
                break
            batch.step()
        t.join()
        assert len(finished) == len(sessions) and all(e is None for _, e in finished)
        ids = {tuple(s.output_ids) for s in sessions}
        assert len(ids) == 1  # same image and prompt: same greedy ids
        for s in sessions:
            s.close()


def test_batch_limits_and_bad_arguments(tiny_dir, model_images):
    with paligemma.Model(tiny_dir, threads=1) as model:
        with pytest.raises(PaliGemmaError):
            Batch(model, max_batch=65)
        with Batch(model, max_batch=1, max_sessions=1) as batch, Session(model) as s1, \
                Session(model) as s2, Session(model) as s3:
            with pytest.raises(PaliGemmaError) as err:
                batch.add(s3)  # no image, no prompt
            assert err.value.status == Status.BAD_STATE
            image = os.path.join(model_images, os.listdir(model_images)[0])
            for s in (s1, s2):
                s.set_image(image)
                s.set_prompt("caption en")
            batch.add(s1, max_new_tokens=2)
            with pytest.raises(PaliGemmaError) as err:
                batch.add(s2)
            assert err.value.status == Status.LIMIT
            batch.remove(s1)
            s1.set_prompt("caption en")  # usable again
            with pytest.raises(ValueError):
                list(model.caption_many([image], batch=0 - 1))
