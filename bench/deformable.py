"""Deformable vs dense attention over the same multi-scale tokens, as the input grows.

For a square S×S input the tokens are the 4 levels of a stride 8/16/32/64 pyramid, N = Σ ceil(S/s)², D = 256,
8 heads, batch 1. Each row times one encoder self-attention layer's forward (no grad) over all N tokens:

- deformable: `cltr_learn.deformable.MSDeformAttn` (4 levels × 4 points), queries at the encoder reference points;
- dense: the plain encoder's `cltr_learn.attention.MultiheadAttention` with `need_weights=True`, the explicit
  softmax(q·kᵀ/√dh)·v that holds the (nh, N, N) weights;
- sdpa: the same module with `need_weights=False` (the plain encoder's default), which calls
  `F.scaled_dot_product_attention`: a fused kernel that never holds the weights, so its memory stays linear
  while its time stays quadratic.

Timings are the best of several forwards on the CPU, one thread by default (`--threads`); on a shared machine
they vary from run to run, and the growth exponents are the robust part. Each (method, size) runs in its own
subprocess; its peak memory is the growth of the process's maximum resident set size (`resource.getrusage`)
during the forwards, above what the inputs and weights already took. The growth exponent k is the least-squares
slope of log(value) against log(N) (value ∝ N^k).

    .venv/bin/python bench/deformable.py                    # default sizes, 256² to 1024²
    .venv/bin/python bench/deformable.py --sizes 256 512 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

STRIDES = (8, 16, 32, 64)


def level_sizes(size: int) -> list[tuple[int, int]]:
    return [(math.ceil(size / s), math.ceil(size / s)) for s in STRIDES]


def worker(method: str, size: int, d_model: int, n_heads: int, n_points: int, repeats: int, threads: int) -> dict:
    "Runs in a fresh process: build the inputs, then time `repeats` forwards and measure the peak RSS growth."
    import torch
    from cltr_learn.attention import MultiheadAttention
    from cltr_learn.deformable import MSDeformAttn, encoder_reference_points
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shapes = torch.tensor(level_sizes(size))
    N = int(shapes.prod(1).sum())
    x = torch.randn(1, N, d_model)
    if method == 'deformable':
        attn = MSDeformAttn(d_model, len(STRIDES), n_heads, n_points).eval()
        ref = encoder_reference_points(shapes, torch.ones(1, len(STRIDES), 2))   # (1, N, M, 2)
        run = lambda: attn(x, ref, x, shapes)
    else:
        attn = MultiheadAttention(d_model, n_heads).eval()
        run = lambda: attn(x, x, x, need_weights=method == 'dense')[0]
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.no_grad():
        while len(times) < repeats + 1 or (sum(times[1:]) < 1.0 and len(times) < 30):   # first call: warm-up
            t0 = time.perf_counter(); out = run(); times.append(time.perf_counter() - t0)
            assert out.shape == (1, N, d_model)
            del out
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(method=method, size=size, tokens=N, ms=1000 * min(times[1:]), peak_mb=(peak_kb - base_kb) / 1024)


def run_in_subprocess(method: str, size: int, args) -> dict:
    cmd = [sys.executable, __file__, '--worker', method, '--sizes', str(size), '--d-model', str(args.d_model),
           '--heads', str(args.heads), '--points', str(args.points), '--repeats', str(args.repeats),
           '--threads', str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return dict(method=method, size=size, error=res.stderr.strip().splitlines()[-1] if res.stderr else 'failed')
    return json.loads(res.stdout.strip().splitlines()[-1])


def growth_exponent(tokens: list[int], values: list[float]) -> float:
    "Least-squares slope of log(value) vs log(tokens)."
    lx = [math.log(t) for t in tokens]; ly = [math.log(max(v, 1e-9)) for v in values]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 320, 384, 448, 512, 640, 768, 1024])
    p.add_argument('--d-model', type=int, default=256)
    p.add_argument('--heads', type=int, default=8)
    p.add_argument('--points', type=int, default=4)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads per run (1: on a shared 2-core machine a second thread mostly waits for a core, '
                        'and its spinning inflates and scatters the timings)')
    p.add_argument('--dense-max-gb', type=float, default=3.0,
                   help='skip dense sizes whose (nh, N, N) weights and scores would need more than this (GB)')
    p.add_argument('--sdpa-max-tokens', type=int, default=13000, help='skip sdpa beyond this many tokens (time)')
    p.add_argument('--worker', choices=['deformable', 'dense', 'sdpa'], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args.d_model, args.heads, args.points,
                                args.repeats, args.threads)))
        return 0

    import torch
    print(f"torch {torch.__version__}, {args.threads} threads, CPU; D={args.d_model}, nh={args.heads}, "
          f"M={len(STRIDES)} levels (strides {STRIDES}), P={args.points}, batch 1; best of >= {args.repeats} forwards (more for fast ones, up to 1 s)")
    rows = []
    for size in args.sizes:
        N = sum(h * w for h, w in level_sizes(size))
        row = dict(size=size, tokens=N)
        for method in ('deformable', 'dense', 'sdpa'):
            need_gb = 2 * args.heads * N * N * 4 / 1e9
            if method == 'dense' and need_gb > args.dense_max_gb:
                row[method] = f'skip (~{need_gb:.0f} GB)'; continue
            if method == 'sdpa' and N > args.sdpa_max_tokens:
                row[method] = 'skip'; continue
            r = run_in_subprocess(method, size, args)
            row[method] = r if 'ms' in r else f"error: {r['error']}"
        rows.append(row)
        cells = []
        for method in ('deformable', 'dense', 'sdpa'):
            r = row[method]
            cells.append(f"{r['ms']:10.1f} {r['peak_mb']:9.1f}" if isinstance(r, dict) else f"{r:>20}")
        if len(rows) == 1:
            print(f"{'input':>9} {'tokens':>7} | {'deformable ms':>13} {'MB':>6} | {'dense ms':>10} {'MB':>9} | "
                  f"{'sdpa ms':>10} {'MB':>9}")
        print(f"{size:>4}x{size:<4} {N:>7} | {cells[0]:>20} | {cells[1]:>20} | {cells[2]:>20}", flush=True)

    print("\ngrowth exponent k (time or peak memory ∝ tokens^k), least squares over the measured sizes:")
    for method in ('deformable', 'dense', 'sdpa'):
        done = [r for r in rows if isinstance(r[method], dict)]
        if len(done) < 2: print(f"  {method:10s}: fewer than 2 sizes measured"); continue
        tk = [r['tokens'] for r in done]
        kt = growth_exponent(tk, [r[method]['ms'] for r in done])
        km = growth_exponent(tk, [r[method]['peak_mb'] for r in done])
        print(f"  {method:10s}: time k = {kt:.2f}, peak memory k = {km:.2f}  "
              f"({len(done)} sizes, {tk[0]}..{tk[-1]} tokens)")
    same = [r for r in rows if isinstance(r['deformable'], dict) and isinstance(r['dense'], dict)]
    if 2 <= len(same) < len([r for r in rows if isinstance(r['deformable'], dict)]):
        tk = [r['tokens'] for r in same]
        print(f"  deformable over the sizes dense could run: time k = "
              f"{growth_exponent(tk, [r['deformable']['ms'] for r in same]):.2f}, peak memory k = "
              f"{growth_exponent(tk, [r['deformable']['peak_mb'] for r in same]):.2f}")
        print(f"  at {same[-1]['tokens']} tokens dense / deformable: time x{same[-1]['dense']['ms'] / same[-1]['deformable']['ms']:.1f}, "
              f"peak memory x{same[-1]['dense']['peak_mb'] / same[-1]['deformable']['peak_mb']:.1f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
