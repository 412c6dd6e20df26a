"""Time the plain CPU paths of the core notebooks against the fast ones of appendix 15 (`cltr_learn.fast_cpu`).

Four rows, each the median wall time of `--repeats` interleaved runs (plain, fast, plain, fast, ...) after one
warm-up of each:

  dropout   `F.dropout` against `dropout16` on a decoder FFN activation of the official model (batch × 500 × 2048)
  backbone  the backbone's forward and backward: `plain_stages` against `folded_stages`
  step      one training step's forward and backward of the whole model: the model as built against
            `use_fast_cpu_paths(model)` (16-bit dropout and folded batch norm together)
  matching  `match_layers` with `map` against `map_fn=threaded_map(--threads)`, an untrained model's outputs
            (6 layers × batch images × 500 queries, 10 to 400 heads per image)

The model is the official configuration (ResNet-50 C5, 6 + 6 layers, 500 queries) unless `--small`
(ResNet-18 to layer2, 2 + 2 layers of width 64, 100 queries). Random weights: the time does not depend on them.
Timings vary on a shared machine; compare plain and fast within one run.

    .venv/bin/python bench/fast_cpu.py                        # official model, batch 4 of 256², 2 threads
    .venv/bin/python bench/fast_cpu.py --small --repeats 1    # a quick check that it runs
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from cltr_learn.backbone import plain_stages
from cltr_learn.fast_cpu import dropout16, folded_stages, threaded_map, use_fast_cpu_paths
from cltr_learn.matcher import match_layers
from cltr_learn.model import CLTR, CLTRConfig


def interleaved_medians(fns: dict, repeats: int) -> dict:
    "Name → median seconds of `fn()`, the functions run in turn `repeats` times after one warm-up each."
    for fn in fns.values(): fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def report(row: str, t: dict) -> None:
    print(f"{row:9s} plain_s={t['plain']:.4f} fast_s={t['fast']:.4f} speedup={t['plain'] / t['fast']:.2f}x", flush=True)


def config(small: bool, crop: int) -> CLTRConfig:
    if small: return CLTRConfig(backbone='resnet18', feature_layer='layer2', hidden_dim=64, nheads=4, enc_layers=2,
                                dec_layers=2, dim_feedforward=128, num_queries=100, crop_size=crop)
    return CLTRConfig(crop_size=crop)


def step(model, images) -> None:
    "Forward and backward of one batch (a stand-in loss: the sum of the outputs)."
    out = model(images)
    (out['pred_logits'].sum() + out['pred_points'].sum()).backward()
    model.zero_grad(set_to_none=True)


def targets_for(batch: int, queries: int, gen: torch.Generator) -> list:
    sizes = torch.randint(10, min(400, queries) + 1, (batch,), generator=gen).tolist()
    return [dict(points=torch.rand(k, 2, generator=gen), knn=torch.rand(k, generator=gen) * 0.1) for k in sizes]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--crop', type=int, default=256)
    ap.add_argument('--threads', type=int, default=2, help='torch threads, and the threads of threaded_map')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--small', action='store_true', help='a small model instead of the official configuration')
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cfg = config(args.small, args.crop)
    print(f"model={'small' if args.small else 'official'} batch={args.batch} crop={args.crop} threads={args.threads} "
          f"repeats={args.repeats}", flush=True)

    x = torch.randn(args.batch * cfg.num_queries, cfg.dim_feedforward, generator=gen)
    report('dropout', interleaved_medians(dict(plain=lambda: F.dropout(x, 0.1), fast=lambda: dropout16(x, 0.1)), args.repeats))

    plain = CLTR(cfg).train()
    fast = use_fast_cpu_paths(copy.deepcopy(plain))
    images = torch.randn(args.batch, 3, args.crop, args.crop, generator=gen)
    body, layers = plain.backbone.body, plain.backbone.return_layers

    def backbone(stages):
        stages(body, images, layers)[-1].sum().backward(); plain.zero_grad(set_to_none=True)
    report('backbone', interleaved_medians(dict(plain=lambda: backbone(plain_stages), fast=lambda: backbone(folded_stages)),
                                           args.repeats))
    report('step', interleaved_medians(dict(plain=lambda: step(plain, images), fast=lambda: step(fast, images)), args.repeats))

    L, Q = cfg.dec_layers, cfg.num_queries
    logits, points = torch.randn(L, args.batch, Q, 2, generator=gen), torch.rand(L, args.batch, Q, 3, generator=gen)
    targets = targets_for(args.batch, Q, gen)
    tmap = threaded_map(args.threads)
    report('matching', interleaved_medians(dict(plain=lambda: match_layers(logits, points, targets),
                                                fast=lambda: match_layers(logits, points, targets, map_fn=tmap)),
                                           args.repeats))


if __name__ == '__main__':
    main()
