"""Deformable vs dense attention over the same multi-scale tokens, as the input grows.

For a square S×S input the tokens are the 4 levels of a stride 8/16/32/64 pyramid, N = Σ ceil(S/s)², D = 256,
8 heads, batch 1. Each row times one encoder self-attention layer's forward (no grad) over all N tokens, best of
several runs (the machine may be shared):

- deformable: `cltr_learn.deformable.MSDeformAttn` (4 levels × 4 points), queries at the encoder reference points;
- dense: multi-head attention written out (q/k/v projections, softmax(q·kᵀ/√dh)·v, output projection), which
  holds the (nh, N, N) weights like the plain encoder's attention does;
- sdpa: the same dense attention through `F.scaled_dot_product_attention` (a fused kernel that never holds the
  weights: memory stays linear, time stays quadratic).

Every (method, size) runs in its own subprocess; its peak memory is the growth of the process's maximum resident
set size (`resource.getrusage`) during the forwards, above what the inputs and weights already took.
The growth exponent k is the least-squares slope of log(value) against log(N) (value ∝ N^k).

    .venv/bin/python bench/deformable.py                    # default sizes
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


def dense_attention(x, qkv, proj, n_heads):
    "Plain multi-head self-attention over all tokens, materialising the (B, nh, N, N) weights."
    import torch
    from einops import rearrange
    q, k, v = rearrange(qkv(x), 'b n (three nh dh) -> three b nh n dh', three=3, nh=n_heads)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)   # (B, nh, N, N)
    return proj(rearrange(w @ v, 'b nh n dh -> b n (nh dh)'))


def sdpa_attention(x, qkv, proj, n_heads):
    import torch.nn.functional as F
    from einops import rearrange
    q, k, v = rearrange(qkv(x), 'b n (three nh dh) -> three b nh n dh', three=3, nh=n_heads)
    return proj(rearrange(F.scaled_dot_product_attention(q, k, v), 'b nh n dh -> b n (nh dh)'))


def worker(method: str, size: int, d_model: int, n_heads: int, n_points: int, repeats: int, threads: int) -> dict:
    "Runs in a fresh process: build the inputs, then time `repeats` forwards and measure the peak RSS growth."
    import torch
    from torch import nn
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
        qkv, proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        fn = dense_attention if method == 'dense' else sdpa_attention
        run = lambda: fn(x, qkv, proj, n_heads)
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
    p.add_argument('--threads', type=int, default=2)
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
    return 0


if __name__ == '__main__':
    sys.exit(main())
