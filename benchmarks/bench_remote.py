"""Remote data manager benchmark: 200 files of 1 MB from a local HTTP server.

    python benchmarks/bench_remote.py [--files 200] [--size-mb 1]

Prints the time to fetch them one at a time, in parallel (``fetch_many``), and a second
round (everything cached), with the ratios. Targets (issue #6): parallel >= 4x faster than
one at a time; the second round makes zero requests and returns well under a second.

The server is a threaded ``http.server`` with a 20 ms delay per request (a modest network
round trip; on loopback alone there is little to overlap).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SERVER = """
import http.server, sys, time, threading
blob = open(sys.argv[1], 'rb').read()
latency = float(sys.argv[2])
served = [0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        if self.path == '/count':
            body = str(served[0]).encode()
        else:
            with lock:
                served[0] += 1
            time.sleep(latency)
            body = blob
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from astroflow.storage.remote import RemoteData

    blob = os.urandom(int(args.size_mb * 1024 * 1024))
    # The server runs in its own process so that it does not share our GIL.
    with tempfile.NamedTemporaryFile(delete=False) as tmp_blob:
        tmp_blob.write(blob)
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, tmp_blob.name, str(args.latency_ms / 1000)],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(server.stdout.readline())
    base = f"http://127.0.0.1:{port}"
    requests = {"n": 0}

    def count() -> int:
        with urllib.request.urlopen(f"{base}/count", timeout=10) as resp:
            return int(resp.read())

    digest = hashlib.sha256(blob).hexdigest()
    items = [
        {"name": f"f{i:04d}.bin", "urls": [f"{base}/f{i}"], "sha256": digest}
        for i in range(args.files)
    ]
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        serial = RemoteData(a)
        t0 = time.perf_counter()
        for item in items:
            serial.fetch(**item)
        t_serial = time.perf_counter() - t0
        parallel = RemoteData(b, max_workers=16)
        t0 = time.perf_counter()
        parallel.fetch_many(items)
        t_parallel = time.perf_counter() - t0
        before = count()
        t0 = time.perf_counter()
        parallel.fetch_many(items)
        t_second = time.perf_counter() - t0
        extra = count() - before
    server.terminate()
    os.unlink(tmp_blob.name)
    del requests
    print(
        f"{args.files} files x {args.size_mb} MB, {args.latency_ms} ms latency, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"one at a time: {t_serial:.2f} s")
    print(
        f"fetch_many:    {t_parallel:.2f} s  -> {t_serial / t_parallel:.1f}x faster (target >= 4x)"
    )
    print(f"second round:  {t_second:.3f} s, {extra} requests (target: 0 requests, < 1 s)")


if __name__ == "__main__":
    main()
