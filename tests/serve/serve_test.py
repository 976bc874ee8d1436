#!/usr/bin/env python3
"""pg serve driven by real clients: urllib (Ollama as PhotoPrism and Open WebUI send it,
OpenAI SSE), curl, malformed requests, a client that hangs up, and a bounded load test.

usage: serve_test.py PG MODEL_DIR IMAGE
"""
import base64
import concurrent.futures as cf
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

failures = 0


def check(ok, what):
    global failures
    print(('ok    ' if ok else 'FAIL  ') + what, flush=True)
    failures += 0 if ok else 1


def post(base, path, body, headers=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers=headers or {}, method='POST')
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get(base, path, headers=None):
    req = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def start(pg, model, extra):
    proc = subprocess.Popen([pg, 'serve', '-m', model, '--port', '0', '--threads', '1',
                             '--batch', '4'] + extra, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r'ready on port (\d+)', line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        proc.kill()
        raise SystemExit('pg serve did not start')
    return proc, 'http://127.0.0.1:%d' % port


def main():
    pg, model, image = sys.argv[1:4]
    img_b64 = base64.b64encode(open(image, 'rb').read()).decode()
    cli = subprocess.run([pg, 'generate', '-m', model, '-p', 'caption en', '-n', '12', '--json',
                          '--threads', '1', image], stdout=subprocess.PIPE, timeout=60)
    want = json.loads(cli.stdout.decode().splitlines()[0])['text']
    proc, base = start(pg, model, ['--api-key', 'sekret', '--max-body', '1', '--timeout', '20'])
    auth = {'Authorization': 'Bearer sekret'}
    try:
        st, _ = get(base, '/health')
        check(st == 200, '/health without key: 200')
        st, _ = get(base, '/api/tags')
        check(st == 401, 'no key: 401')
        st, body = get(base, '/api/version', auth)
        check(st == 200 and re.match(r'^\d+\.\d+\.\d+$', json.loads(body)['version']) is not None,
              '/api/version numeric')
        st, body = get(base, '/api/tags', auth)
        tags = json.loads(body)['models']
        name = tags[0]['name'] if tags else ''
        check(st == 200 and len(tags) == 1 and tags[0]['model'] == name and
              tags[0]['details']['family'] == 'paligemma', '/api/tags: name, model, details')
        st, body = get(base, '/v1/models', auth)
        check(st == 200 and json.loads(body)['data'][0]['id'] == name, '/v1/models')
        # PhotoPrism: stream false, base64 image, format json; response must be JSON
        req = {'model': name, 'prompt': 'caption en', 'images': [img_b64], 'stream': False,
               'options': {'num_predict': 12, 'temperature': 0}}
        st, body = post(base, '/api/generate', req, auth)
        r = json.loads(body)
        check(st == 200 and r['response'] == want, 'non-streamed /api/generate == pg generate')
        fields = ['done', 'done_reason', 'total_duration', 'load_duration', 'prompt_eval_count',
                  'prompt_eval_duration', 'eval_count', 'eval_duration']
        check(all(k in r for k in fields) and r['done'] is True and r['eval_count'] == 12 and
              r['done_reason'] == 'length', 'Ollama final fields')
        st, body = post(base, '/api/generate', dict(req, format='json'), auth)
        r = json.loads(body)
        check(st == 200 and json.loads(r['response']) is not None, 'format json: JSON response')
        # streamed NDJSON
        st, body = post(base, '/api/generate', dict(req, stream=True), auth)
        lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
        check(st == 200 and lines[-1]['done'] and all(not l['done'] for l in lines[:-1]) and
              ''.join(l['response'] for l in lines) == want, 'streamed /api/generate NDJSON')
        # Open WebUI: /api/tags then streaming /api/chat
        chat = {'model': name, 'messages': [{'role': 'user', 'content': 'caption en',
                                             'images': [img_b64]}],
                'options': {'num_predict': 12}}
        st, body = post(base, '/api/chat', chat, auth)
        lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
        check(st == 200 and lines[-1]['done'] and
              ''.join(l['message']['content'] for l in lines) == want, 'streamed /api/chat')
        # OpenAI SSE through urllib
        oai = {'model': name, 'stream': True, 'max_tokens': 12, 'messages': [
            {'role': 'user', 'content': [{'type': 'text', 'text': 'caption en'},
                                         {'type': 'image_url', 'image_url': {
                                             'url': 'data:image/png;base64,' + img_b64}}]}]}
        st, body = post(base, '/v1/chat/completions', oai, auth)
        events = [l[6:] for l in body.decode().split('\n') if l.startswith('data: ')]
        chunks = [json.loads(e) for e in events[:-1]]
        text = ''.join(c['choices'][0]['delta'].get('content', '') for c in chunks)
        check(st == 200 and events[-1] == '[DONE]' and text == want and
              chunks[-1]['usage']['completion_tokens'] == 12, 'OpenAI SSE, [DONE], usage')
        st, body = post(base, '/v1/chat/completions', dict(oai, stream=False), auth)
        r = json.loads(body)
        check(st == 200 and r['choices'][0]['message']['content'] == want, 'OpenAI non-streamed')
        # curl
        out = subprocess.run(['curl', '-s', '-H', 'Authorization: Bearer sekret', '-d',
                              json.dumps(req), base + '/api/generate'], stdout=subprocess.PIPE,
                             timeout=60).stdout
        check(json.loads(out)['response'] == want, 'curl /api/generate')
        # malformed -> 4xx JSON errors
        bad = [(b'{bad', 400), (json.dumps({'model': name, 'images': ['!!!']}).encode(), 400),
               (json.dumps({'model': name, 'images': ['aGVsbG8=']}).encode(), 400),
               (json.dumps({'model': 'nope', 'images': [img_b64]}).encode(), 404),
               (json.dumps({'model': name, 'prompt': 'x' * 70000, 'images': [img_b64]}).encode(), 400),
               (json.dumps({'model': name, 'images': ['https://example.com/a.jpg']}).encode(), 400)]
        for raw, code in bad:
            st, body = post(base, '/api/generate', None, auth, raw=raw)
            check(st == code and 'error' in json.loads(body), 'malformed -> %d JSON error' % code)
        # over --max-body: 413 before the body is read (so sent from a raw socket)
        s = socket.create_connection(('127.0.0.1', int(base.rsplit(':', 1)[1])))
        s.sendall(b'POST /api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n'
                  b'Content-Length: %d\r\n\r\n' % (2 << 20))
        s.settimeout(10)
        head = s.recv(4096).decode(errors='replace')
        s.close()
        check(head.startswith('HTTP/1.1 413') and '"error"' in head, 'body over --max-body: 413 JSON')
        # a client that hangs up mid-generation: the server goes on
        s = socket.create_connection(('127.0.0.1', int(base.rsplit(':', 1)[1])))
        b = json.dumps(dict(req, options={'num_predict': 1000})).encode()
        s.sendall(b'POST /api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n'
                  b'Content-Length: %d\r\n\r\n' % len(b) + b)
        time.sleep(0.2)
        s.close()
        # bounded load: 200 good requests, 8 at a time, plus 20 malformed
        def one(i):
            if i % 11 == 0:
                return post(base, '/api/generate', None, auth, raw=b'{"model": 1')[0] == 400
            st, body = post(base, '/api/generate', dict(req, options={'num_predict': 4}), auth)
            return st == 200 and json.loads(body)['eval_count'] == 4
        rss0 = None
        ok = 0
        with cf.ThreadPoolExecutor(8) as ex:
            for k, good in enumerate(ex.map(one, range(220))):
                ok += good
                if k == 40:
                    rss0 = rss_kb(proc.pid)
        rss1 = rss_kb(proc.pid)
        check(ok == 220, 'load: %d/220 answered as expected' % ok)
        check(proc.poll() is None, 'server alive after load')
        # AddressSanitizer keeps up to 256 MB of freed memory in quarantine: allow for it there
        asan = 'libasan' in open('/proc/%d/maps' % proc.pid).read()
        slack = 300000 if asan else 20000
        check(rss1 < rss0 * 1.25 + slack, 'RSS flat: %d kB after 40, %d kB after 220%s'
              % (rss0, rss1, ' (ASan: quarantine allowed)' if asan else ''))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    check(proc.returncode == 0, 'clean exit on SIGTERM (%s)' % proc.returncode)
    print('%d failure(s)' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
