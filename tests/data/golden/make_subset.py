#!/usr/bin/python3
"""Copies the part of ../shared/fixtures/models/golden/{tiny,tiny_b} that the model and session
tests use into this folder (run from anywhere; needs numpy).

Per image: pixel_values, vision_hidden_states, vision_out, projector_out.
Per case:  input_ids, generated_ids, prefill_logits_last, text_layer_input, text_layer_out,
           final_norm_out, and step_logits_tail = step_logits[robust_prefix_len:] (the steps
           that are compared teacher-forced; earlier steps are covered by the exact greedy ids).
cases.json: id, image, prompt, image_dir, seq_len, robust_prefix_len, n_steps per case.
prefill_logits_all and image_features are left out (covered by the smaller arrays).
The input images are in tests/data/image/models (copied by the image room).
"""
import json
import os
import shutil
import sys

import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else '/work/shared/fixtures/models'
DST = os.path.dirname(os.path.abspath(__file__))
IMAGE_FILES = ['pixel_values', 'vision_hidden_states', 'vision_out', 'projector_out']
CASE_FILES = ['input_ids', 'generated_ids', 'prefill_logits_last', 'text_layer_input',
              'text_layer_out', 'final_norm_out']

for cfg in ['tiny', 'tiny_b']:
    man = json.load(open(os.path.join(SRC, 'golden', cfg, 'manifest.json')))
    out_cases = []
    for c in man['cases']:
        image_dir = os.path.dirname(c['files']['pixel_values']['file'])
        os.makedirs(os.path.join(DST, cfg, image_dir), exist_ok=True)
        for f in IMAGE_FILES:
            shutil.copyfile(os.path.join(SRC, 'golden', cfg, image_dir, f + '.npy'),
                            os.path.join(DST, cfg, image_dir, f + '.npy'))
        cdir = os.path.join(DST, cfg, c['id'])
        os.makedirs(cdir, exist_ok=True)
        for f in CASE_FILES:
            shutil.copyfile(os.path.join(SRC, 'golden', cfg, c['id'], f + '.npy'),
                            os.path.join(cdir, f + '.npy'))
        robust = c['greedy']['robust_prefix_len']
        steps = np.load(os.path.join(SRC, 'golden', cfg, c['id'], 'step_logits.npy'))
        tail = os.path.join(cdir, 'step_logits_tail.npy')
        if robust < steps.shape[0]:
            np.save(tail, np.ascontiguousarray(steps[robust:], dtype='<f4'))
        elif os.path.exists(tail):
            os.remove(tail)
        out_cases.append({'id': c['id'], 'image': c['image'], 'prompt': c['prompt'],
                          'image_dir': image_dir, 'seq_len': c['seq_len'],
                          'robust_prefix_len': robust, 'n_steps': int(steps.shape[0])})
    with open(os.path.join(DST, cfg, 'cases.json'), 'w') as f:
        json.dump({'config': cfg, 'num_image_tokens': man['num_image_tokens'],
                   'cases': out_cases}, f, indent=1)
        f.write('\n')

