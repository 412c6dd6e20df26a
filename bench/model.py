"""CPU timing of cltr_learn's CLTR model in the official default configuration.

Builds `CLTRConfig()` (ResNet-50 with random weights, 6 encoder + 6 decoder layers, width 256, 8 heads,
FFN 2048, 500 queries, aux outputs on) and times, with 2 CPU threads:

  forward     eval mode, torch.no_grad(), a batch of 4 random 3x256x256 crops
  train step  train mode: zero_grad + forward + loss + backward. The loss is the project's criterion
              (`cltr_learn.losses.build_criterion`: Hungarian matching of every decoder layer, focal loss,
              L1 on (x, y, d)) on 50 random points per crop, as the official benchmark does; if that
              module is missing, the sum of all outputs (printed as `loss=sum`).

2 warm-up iterations, then `--iters` timed ones; prints the medians:

  forward_b4_s=0.xx
  train_step_b4_s=x.xx

Run it right beside the official benchmark (`bench_official.py` of the official code, in its own
environment) on the same machine, and compare the medians.

Usage: .venv/bin/python bench/model.py [--backbone resnet50] [--layers 6] [--queries 500] [--iters 5]
       [--threads 2] [--channels-last]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from cltr_learn.model import CLTRConfig, build_model, count_parameters

BATCH, CROP, POINTS, WARMUP = 4, 256, 50, 2


def timed(fn, iters: int, warmup: int = WARMUP) -> tuple[float, list[float]]:
    for _ in range(warmup): fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def make_loss(cfg: CLTRConfig, seed: int):
    "(name, loss function of the outputs): the project's criterion on random targets, else the sum of the outputs."
    try:
        from cltr_learn.losses import build_criterion
        from cltr_learn.synthetic import make_target
    except ImportError:
        return 'sum', lambda out: out['pred_logits'].sum() + out['pred_points'].sum() + sum(
            a['pred_logits'].sum() + a['pred_points'].sum() for a in out['aux_outputs'])
    rng = np.random.RandomState(seed)
    targets = [make_target(rng.uniform(0, CROP, (POINTS, 2)).astype(np.float32), CROP, CROP) for _ in range(BATCH)]
    criterion = build_criterion(cfg)
    return 'criterion', lambda out: criterion(out, targets)['loss']


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--backbone', default='resnet50')
    p.add_argument('--layers', type=int, default=6, help='encoder and decoder layers')
    p.add_argument('--queries', type=int, default=500)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--channels-last', action='store_true', help='run the backbone in channels-last memory format')
    ns = p.parse_args()

    torch.set_num_threads(ns.threads)
    torch.manual_seed(ns.seed)
    cfg = CLTRConfig(backbone=ns.backbone, enc_layers=ns.layers, dec_layers=ns.layers, num_queries=ns.queries)
    model = build_model(cfg)
    if ns.channels_last: model = model.to(memory_format=torch.channels_last)
    x = torch.randn(BATCH, 3, CROP, CROP, generator=torch.Generator().manual_seed(ns.seed + 1))
    if ns.channels_last: x = x.contiguous(memory_format=torch.channels_last)
    loss_name, loss_fn = make_loss(cfg, ns.seed + 2)
    print(f'config: backbone={cfg.backbone} enc_layers={cfg.enc_layers} dec_layers={cfg.dec_layers} '
          f'hidden_dim={cfg.hidden_dim} nheads={cfg.nheads} dim_feedforward={cfg.dim_feedforward} '
          f'num_queries={cfg.num_queries} params={count_parameters(model) / 1e6:.3f}M threads={torch.get_num_threads()} '
          f'batch={BATCH}x3x{CROP}x{CROP} loss={loss_name} channels_last={ns.channels_last} iters={ns.iters}')

    model.eval()
    def forward():
        with torch.no_grad(): model(x)
    f_med, f_all = timed(forward, ns.iters)

    model.train()
    last = {}
    def step():
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x))
        loss.backward()
        last['loss'] = loss.item()
    t_med, t_all = timed(step, ns.iters)

    print('forward times (s):', ' '.join(f'{t:.3f}' for t in f_all))
    print('train-step times (s):', ' '.join(f'{t:.3f}' for t in t_all), f'(last loss {last["loss"]:.4f})')
    print(f'forward_b4_s={f_med:.4f}')
    print(f'train_step_b4_s={t_med:.4f}')


if __name__ == '__main__':
    main()
