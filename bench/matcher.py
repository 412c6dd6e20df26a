"""Time CLTR's matching + loss on the official training shape.

Compares the straightforward reference (`cltr_learn.losses.naive_criterion`: one cost matrix, one
transfer and one SciPy call per layer and image, a one-hot target and a gather per layer) with the
exported criterion (`build_criterion`: one batched cost tensor for all layers and images, one
transfer, losses of all layers vectorised), once with the serial `map` for the assignments (the core
default) and once with `cltr_learn.fast_cpu.threaded_map(--threads)` (the appendix's thread pool).
Forward only (matching has no gradient; the backward pass of both is the same autograd graph size).

Two kinds of predictions:
  start    an untrained model: points anywhere, d near 0.5, low scores (the Hungarian problems are hard)
  trained  a model that has learned: one query near each head, the rest anywhere (the problems are easy)

Usage: .venv/bin/python bench/matcher.py [--batch 16] [--queries 500] [--layers 6] [--kmin 10] [--kmax 400]
       [--repeats 5] [--threads 2] [--scenario start trained]
Prints one line per scenario: `scenario=... naive_s=... fast_s=... threaded_s=... speedup=...x scipy_serial_s=...`
(medians of interleaved runs, wall clock; speedup = naive / threaded). `scipy_serial_s` is the time of the L·B
SciPy assignments alone, one after the other: every criterion must do this work (the threaded one spreads it
over `--threads` threads), so it bounds what any rewrite of the rest can gain.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from types import SimpleNamespace

import torch

from scipy.optimize import linear_sum_assignment

from cltr_learn.fast_cpu import threaded_map
from cltr_learn.losses import build_criterion, naive_criterion
from cltr_learn.matcher import cost_matrices, pad_targets, stack_layers


def knn_normalised(points: torch.Tensor) -> torch.Tensor:
    "Mean distance to the (at most 3) nearest other points, for points already normalised by the crop width."
    K = len(points)
    if K < 2: return torch.zeros(K)
    d = torch.cdist(points, points) + torch.eye(K) * 1e9
    return d.topk(min(3, K - 1), largest=False).values.mean(-1)


def make_batch(batch: int, queries: int, layers: int, kmin: int, kmax: int, scenario: str, seed: int = 0):
    "Targets (`batch` dicts) and a model-like output dict with `layers` decoder layers."
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(kmin, kmax + 1, (batch,), generator=g).tolist()
    targets = []
    for k in sizes:
        pts = torch.rand(k, 2, generator=g)
        targets.append(dict(points=pts, knn=knn_normalised(pts)))
    if scenario == 'start':
        points = torch.cat([torch.rand(layers, batch, queries, 2, generator=g),
                            0.5 + 0.02 * torch.randn(layers, batch, queries, 1, generator=g)], -1)
        logits = -4.6 + 0.5 * torch.randn(layers, batch, queries, 2, generator=g)
    elif scenario == 'trained':
        points = torch.cat([torch.rand(layers, batch, queries, 2, generator=g),
                            0.1 * torch.rand(layers, batch, queries, 1, generator=g)], -1)
        logits = -4.0 + torch.randn(layers, batch, queries, 2, generator=g)
        for b, t in enumerate(targets):
            k = len(t['points'])
            slots = torch.randperm(queries, generator=g)[:k]
            xyd = torch.cat([t['points'], t['knn'][:, None]], -1)
            for l in range(layers):                      # later layers are closer to the heads
                noise = 0.02 * (layers - l) / layers
                points[l, b, slots] = (xyd + noise * torch.randn(k, 3, generator=g)).clamp(0, 1)
                logits[l, b, slots, 1] += 6
    else:
        raise ValueError(f"scenario: expected 'start' or 'trained', got {scenario!r}")
    outputs = dict(pred_logits=logits[-1], pred_points=points[-1],
                   aux_outputs=[dict(pred_logits=logits[l], pred_points=points[l]) for l in range(layers - 1)])
    return outputs, targets


def interleaved_medians(fns: dict, repeats: int) -> dict:
    "Median wall-clock seconds of each function, run in turn (one warm-up each) so that load changes hit all alike."
    for fn in fns.values(): fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def scipy_only(outputs: dict, targets: list) -> None:
    "The assignments alone, one after the other, on precomputed costs: the work both criteria must do."
    logits, points = stack_layers(outputs)
    tgt, sizes = pad_targets(targets)
    cost = cost_matrices(logits, points, tgt).numpy()               # (L, B, Q, K_max)
    return lambda: [linear_sum_assignment(cost[l, b, :, :k]) for l in range(len(cost)) for b, k in enumerate(sizes) if k]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--queries', type=int, default=500)
    ap.add_argument('--layers', type=int, default=6)
    ap.add_argument('--kmin', type=int, default=10)
    ap.add_argument('--kmax', type=int, default=400)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--scenario', nargs='+', default=['start', 'trained'])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = SimpleNamespace(set_cost_class=2.0, set_cost_point=5.0, cls_loss_coef=2.0, point_loss_coef=5.0,
                          focal_alpha=0.25, focal_gamma=2.0, dec_layers=args.layers, aux_loss=True)
    criterion = build_criterion(cfg)                                          # serial map
    threaded = build_criterion(cfg, map_fn=threaded_map(args.threads))       # the appendix's thread pool
    print(f'shape: batch={args.batch} queries={args.queries} layers={args.layers} gt_points={args.kmin}-{args.kmax} '
          f'torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} loadavg_1min={os.getloadavg()[0]:.2f}')
    for scenario in args.scenario:
        outputs, targets = make_batch(args.batch, args.queries, args.layers, args.kmin, args.kmax, scenario)
        with torch.no_grad():
            ref = naive_criterion(outputs, targets)
            worst = 0.0
            for crit in (criterion, threaded):
                out = crit(outputs, targets)
                worst = max([worst] + [abs(float(ref[k]) - float(out[k])) / max(1.0, abs(float(ref[k]))) for k in ref])
            assert worst < 1e-4, f'fast and naive criteria disagree (relative {worst:.2e})'
            t = interleaved_medians(dict(naive=lambda: naive_criterion(outputs, targets),
                                         fast=lambda: criterion(outputs, targets),
                                         threaded=lambda: threaded(outputs, targets),
                                         scipy=scipy_only(outputs, targets)), args.repeats)
        print(f"scenario={scenario} naive_s={t['naive']:.4f} fast_s={t['fast']:.4f} threaded_s={t['threaded']:.4f} "
              f"speedup={t['naive'] / t['threaded']:.2f}x "
              f"scipy_serial_s={t['scipy']:.4f} (medians of {args.repeats}; max relative loss difference {worst:.1e})")


if __name__ == '__main__':
    main()
