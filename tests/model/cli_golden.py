#!/usr/bin/env python3
"""Golden check of `pg generate --json --dump-dir` (standard library only).

usage: cli_golden.py PG GOLDEN_DIR MODEL_DIR IMAGES_DIR [BACKEND]
       cli_golden.py PG --shared FIXTURES_DIR CONFIG CACHE_DIR [BACKEND]
The second form runs a config of ../shared/fixtures/models (exit 77 = skipped when absent;
PG_SHARED_FIXTURES overrides the folder); `full` is regenerated into CACHE_DIR/full if needed.

For every case of GOLDEN_DIR/cases.json (tests/data/golden/<config>) or of a shared golden
manifest.json: runs pg generate greedily for the case's number of steps and checks
 - prompt_ids == the golden input_ids,
 - ids: equal to the golden generated_ids over the robust prefix,
 - the dumped generated_ids.npy == the JSON ids,
 - pixel_values (<= 1e-6), vision_out and projector_out (<= 1e-4 * max|golden|),
   prefill_logits_last (<= 5e-3), the tolerances of the fixtures' manifest.
Prints one line per check and exits 1 on any failure.
"""
import array
import ast
import json
import os
import subprocess
import sys
import tempfile

PIXEL_ABS = 1e-6
STAGE_REL = 1e-4
LOGIT_ABS = 5e-3


def read_npy(path):
    """Returns (shape, flat list) of a little-endian <f4 / <i4 .npy file."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:6] != b'\x93NUMPY':
        raise ValueError(path + ': not a .npy file')
    major = data[6]
    if major == 1:
        hlen = int.from_bytes(data[8:10], 'little')
        start = 10
    else:
        hlen = int.from_bytes(data[8:12], 'little')
        start = 12
    header = ast.literal_eval(data[start:start + hlen].decode('latin1'))
    if header['fortran_order'] or header['descr'] not in ('<f4', '<i4'):
        raise ValueError(path + ': unsupported layout ' + str(header))
    arr = array.array('f' if header['descr'] == '<f4' else 'i')
    arr.frombytes(data[start + hlen:])
    if sys.byteorder != 'little':
        arr.byteswap()
    return tuple(header['shape']), arr


failures = 0


def check(ok, what):
    global failures
    print(('ok    ' if ok else 'FAIL  ') + what)
    if not ok:
        failures += 1


def compare(what, got_path, golden_path, abs_tol=0.0, rel_tol=0.0):
    gshape, gold = read_npy(golden_path)
    shape, got = read_npy(got_path)
    if len(got) != len(gold):
        check(False, '%s: %d values, golden has %d' % (what, len(got), len(gold)))
        return
    diff = max((abs(a - b) for a, b in zip(got, gold)), default=0.0)
    tol = abs_tol if abs_tol > 0 else rel_tol * max((abs(v) for v in gold), default=0.0)
    check(diff <= tol, '%s: max|diff| %.3g (tolerance %.3g)' % (what, diff, tol))


def load_cases(golden_dir):
    path = os.path.join(golden_dir, 'cases.json')
    if os.path.exists(path):
        return json.load(open(path))['cases']
    cases = []
    for c in json.load(open(os.path.join(golden_dir, 'manifest.json')))['cases']:
        cases.append({'id': c['id'], 'image': c['image'], 'prompt': c.get('prompt'),
                      'image_dir': 'image_' + c['image'][:-4],
                      'robust_prefix_len': c['greedy']['robust_prefix_len'],
                      'n_steps': c['greedy']['num_new_tokens']})
    return cases


def shared_paths(fixtures, config, cache):
    """(golden, model, images) folders of a shared config; None when the fixtures are absent."""
    fixtures = os.environ.get('PG_SHARED_FIXTURES', fixtures)
    models = os.path.join(fixtures, 'models')
    if not os.path.isdir(models):
        return None
    model_dir = os.path.join(models, 'checkpoints', config, 'bf16')
    if config == 'full':
        model_dir = os.path.join(cache, 'full', 'bf16')
        if not os.path.exists(os.path.join(model_dir, 'model.safetensors.index.json')):
            print('regenerating the full checkpoint into', os.path.join(cache, 'full'))
            subprocess.run(['/usr/bin/python3', os.path.join(models, 'tools', 'make_checkpoint.py'),
                            '--config', 'full', '--out', os.path.join(cache, 'full'), '--no-f32'],
                           check=True)
    return os.path.join(models, 'golden', config), model_dir, os.path.join(models, 'images')


def main():
    global LOGIT_ABS
    pg = sys.argv[1]
    if sys.argv[2] == '--shared':
        paths = shared_paths(sys.argv[3], sys.argv[4], sys.argv[5])
        if paths is None:
            print('SKIP: ../shared/fixtures is absent')
            return 77
        golden_dir, model_dir, images_dir = paths
        backend = sys.argv[6] if len(sys.argv) > 6 else 'cpu'
        if sys.argv[4] == 'tiny896':
            LOGIT_ABS = 2e-3  # the manifest's tolerances_override for the sliding-window config
    else:
        golden_dir, model_dir, images_dir = sys.argv[2:5]
        backend = sys.argv[5] if len(sys.argv) > 5 else 'cpu'
    for c in load_cases(golden_dir):
        case_dir = os.path.join(golden_dir, c['id'])
        image_dir = os.path.join(golden_dir, c['image_dir'])
        _, input_ids = read_npy(os.path.join(case_dir, 'input_ids.npy'))
        _, gold_ids = read_npy(os.path.join(case_dir, 'generated_ids.npy'))
        n_img = list(input_ids).count(input_ids[0])
        with tempfile.TemporaryDirectory() as dump:
            cmd = [pg, 'generate', '-m', model_dir, '-i', os.path.join(images_dir, c['image']),
                   '-n', str(c['n_steps']), '--json', '--dump-dir', dump, '--backend', backend]
            if c.get('prompt') is not None:
                cmd += ['-p', c['prompt']]
            else:  # the ids after the image tokens, verbatim
                cmd += ['--prompt-ids', ','.join(str(i) for i in input_ids[n_img:])]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            print('case', c['id'])
            if proc.returncode != 0:
                check(False, 'pg generate failed: ' + proc.stderr.decode(errors='replace'))
                continue
            out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            check(set(out) == {'text', 'ids', 'prompt_ids', 'stop_reason', 'timings'},
                  'JSON fields ' + ','.join(sorted(out)))
            check(out['prompt_ids'] == list(input_ids), 'prompt_ids == input_ids')
            robust = c['robust_prefix_len']
            expect = robust
            for i, t in enumerate(gold_ids[:robust]):
                if t in (1, 107):  # generation stops at <eos> / <end_of_turn>
                    expect = i
                    break
            same = 0
            while same < min(len(out['ids']), len(gold_ids)) and out['ids'][same] == gold_ids[same]:
                same += 1
            check(same >= expect, 'greedy ids: first %d equal (robust prefix %d)' % (same, robust))
            _, dumped = read_npy(os.path.join(dump, 'generated_ids.npy'))
            check(list(dumped) == out['ids'], 'generated_ids.npy == JSON ids')
            compare('pixel_values', os.path.join(dump, 'pixel_values.npy'),
                    os.path.join(image_dir, 'pixel_values.npy'), abs_tol=PIXEL_ABS)
            compare('vision_out', os.path.join(dump, 'vision_out.npy'),
                    os.path.join(image_dir, 'vision_out.npy'), rel_tol=STAGE_REL)
            compare('projector_out', os.path.join(dump, 'projector_out.npy'),
                    os.path.join(image_dir, 'projector_out.npy'), rel_tol=STAGE_REL)
            compare('prefill_logits_last', os.path.join(dump, 'prefill_logits_last.npy'),
                    os.path.join(case_dir, 'prefill_logits_last.npy'), abs_tol=LOGIT_ABS)
    print('%d failed' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
