#!/usr/bin/env python3
"""gemm_peer.py: dblocks' GEMMs against the CPU's own BLAS, in one run.

Run by hand, never by `make test` or `make demo`. It runs
`dblocks bench ops --gemm --json` (the GEMM as dblocks dispatches it: the
tuned or default own kernel, CLBlast with its defaults and, when the tuning
cache holds CLBlast parameters, CLBlast tuned) and then times the very same
products (same shapes and transposes, fp32) with numpy's BLAS, and prints one
table: GFLOP/s of each, and own / BLAS. numpy is the only Python dependency
(build/peer-venv from tools/peer_bench.py has it).

  build/peer-venv/bin/python tools/gemm_peer.py [--dblocks build/dblocks] [--seconds 0.3] [--json F]

The BLAS side uses every core numpy's BLAS is allowed (OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS limit it); dblocks uses the OpenCL device's compute
units. On a machine shared with other work both figures drop: run it quiet.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time

import numpy as np


def blas_gflops(ta, tb, M, N, K, seconds):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    A, B = (a.T if ta else a), (b.T if tb else b)
    A @ B  # warm-up
    best = float("inf")
    for _ in range(5):  # best of 5 timings of >= seconds/5 each
        n, t0 = 0, time.perf_counter()
        while True:
            A @ B
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds / 5:
                break
        best = min(best, dt / n)
    return 2.0 * M * N * K / best * 1e-9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dblocks", default="build/dblocks")
    ap.add_argument("--seconds", type=float, default=0.3, help="device / host time per row (default 0.3)")
    ap.add_argument("--json", default=None, help="save the table to this file")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "gemm.json")
        r = subprocess.run([a.dblocks, "bench", "ops", "--gemm", "--seconds", str(a.seconds), "--json", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"gemm_peer: dblocks bench ops failed:\n{r.stdout}{r.stderr}")
        bench = json.load(open(out))
    table = {}
    for row in bench["rows"]:
        m = re.match(r"(\w+) ([NT])([NT]) M=(\d+) N=(\d+) K=(\d+)", row["shape"])
        if not m or not row["op"].startswith("gemm"):
            continue
        key = (m.group(1), m.group(2) == "T", m.group(3) == "T", int(m.group(4)), int(m.group(5)), int(m.group(6)))
        col = "own" if "own" in row["op"] else "clblast tuned" if "tuned" in row["op"] else "clblast default"
        table.setdefault(key, {})[col] = row["gflops"]
    print(f"dblocks on {bench['device']} ({bench['platform']}, driver {bench['driver']}); "
          f"numpy {np.__version__} BLAS, {os.cpu_count()} cores")
    print(f"{'product':34s} {'own':>8s} {'CLBlast':>8s} {'CLB tuned':>9s} {'CPU BLAS':>9s} {'own/BLAS':>9s}")
    rows = []
    for (what, ta, tb, M, N, K), cols in table.items():
        blas = blas_gflops(ta, tb, M, N, K, a.seconds)
        own = cols.get("own", float("nan"))
        label = f"{what} {'T' if ta else 'N'}{'T' if tb else 'N'} M={M} N={N} K={K}"
        print(f"{label:34s} {own:8.1f} {cols.get('clblast default', float('nan')):8.1f} "
              f"{cols.get('clblast tuned', float('nan')):9.1f} {blas:9.1f} {own / blas * 100:8.0f}%", flush=True)
        rows.append({"product": label, **cols, "cpu_blas": blas})
    if a.json:
        json.dump({"device": bench["device"], "driver": bench["driver"], "rows": rows}, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
