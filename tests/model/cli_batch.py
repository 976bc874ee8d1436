#!/usr/bin/env python3
"""`pg generate --batch N` against the goldens and against itself alone (standard library).

usage: cli_batch.py PG GOLDEN_DIR MODEL_DIR IMAGES_DIR

The cases of GOLDEN_DIR/cases.json are grouped by prompt; each group's images run as one
`pg generate --json --batch N IMAGE...` call for N = 1, 2, 3 and 8 (mixed images and, across
the group, stop times). Checks, per image:
 - one JSON line per image, in input order (a deliberately broken file in the middle gets its
   {"image", "error"} line and the run goes on, exit status 1);
 - prompt_ids == the golden input_ids and ids == the golden generated_ids over the robust
   prefix (cut at an EOS, where generation must stop);
 - the ids, text and stop reason of every N equal those of N = 1 exactly.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_golden import read_npy  # noqa: E402

failures = 0


def check(ok, what):
    global failures
    print(('ok    ' if ok else 'FAIL  ') + what)
    failures += 0 if ok else 1


def run(pg, model, prompt, ids_prompt, n, images, batch):
    cmd = [pg, 'generate', '-m', model, '-n', str(n), '--json', '--batch', str(batch),
           '--threads', '2']
    cmd += ['-p', prompt] if prompt is not None else ['--prompt-ids', ids_prompt]
    proc = subprocess.run(cmd + images, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=300)
    lines = [json.loads(l) for l in proc.stdout.decode().splitlines() if l.strip()]
    return proc.returncode, lines


def main():
    pg, golden_dir, model_dir, images_dir = sys.argv[1:5]
    cases = json.load(open(os.path.join(golden_dir, 'cases.json')))['cases']
    groups = {}
    for c in cases:
        groups.setdefault(c['prompt'], []).append(c)
    with tempfile.TemporaryDirectory() as tmp:
        broken = os.path.join(tmp, 'broken.png')
        with open(broken, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n truncated')
        for prompt, group in groups.items():
            golden = []
            for c in group:
                _, input_ids = read_npy(os.path.join(golden_dir, c['id'], 'input_ids.npy'))
                _, gen = read_npy(os.path.join(golden_dir, c['id'], 'generated_ids.npy'))
                golden.append((c, list(input_ids), list(gen)))
            n_img = golden[0][1].count(golden[0][1][0])
            ids_prompt = ','.join(str(i) for i in golden[0][1][n_img:])
            n = max(c['n_steps'] for c in group)
            images = [os.path.join(images_dir, c['image']) for c in group]
            images = images[:1] + [broken] + images[1:]
            print('prompt %r: %d images' % (prompt, len(group)))
            alone = None
            for batch in (1, 2, 3, 8):
                rc, lines = run(pg, model_dir, prompt, ids_prompt, n, images, batch)
                check(rc == 1 and len(lines) == len(images),
                      'batch %d: exit 1 (one broken image), %d lines' % (batch, len(lines)))
                if len(lines) != len(images):
                    continue
                check(lines[1].get('image') == broken and 'error' in lines[1],
                      'batch %d: the broken image has its error line' % batch)
                outs = lines[:1] + lines[2:]
                for (c, input_ids, gen), out in zip(golden, outs):
                    if 'ids' not in out:
                        check(False, 'batch %d %s: %s' % (batch, c['id'], out))
                        continue
                    check(out['prompt_ids'] == input_ids, 'batch %d %s: prompt_ids' %
                          (batch, c['id']))
                    robust = c['robust_prefix_len']
                    want = gen[:robust]
                    for i, t in enumerate(want):
                        if t in (1, 107):
                            want = want[:i]
                            check(out['ids'] == want, 'batch %d %s: stops at the EOS' %
                                  (batch, c['id']))
                            break
                    check(out['ids'][:len(want)] == want, 'batch %d %s: %d golden ids' %
                          (batch, c['id'], len(want)))
                strip = [{k: o.get(k) for k in ('ids', 'text', 'stop_reason')} for o in outs]
                if alone is None:
                    alone = strip
                else:
                    check(strip == alone, 'batch %d: ids, text, stop reasons == batch 1' % batch)
    print('%d failures' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
