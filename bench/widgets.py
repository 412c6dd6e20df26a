"""Time the explorers' slider callbacks for a 512×512 synthetic crowd with the small model (CPU).

    .venv/bin/python bench/widgets.py [--threads 2] [--repeats 5]

Each explorer is built once (the model's forward pass and the attention maps happen there), then each slider
is moved `repeats` times; the time of every callback (compute + figure + PNG) is what `state['callback_s']`
recorded. The acceptance bar is 1 s per slider move.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from cltr_learn.widgets import (PosEncExplorer, ShapeExplorer, AttentionExplorer, MatchingExplorer, explorer_model)


def moves(explorer, slider, values) -> list[tuple[float, float]]:
    "Set `slider` to each value; the (wall, CPU) seconds of each callback."
    times = []
    for v in values:
        slider.value = v
        if explorer.state.get('error'): raise RuntimeError(explorer.state['error'])
        times.append((explorer.state['callback_s'], explorer.state['callback_cpu_s']))
    return times


def timed(make):
    "Build an explorer; its (wall, CPU) seconds."
    t0, c0 = time.perf_counter(), time.process_time()
    ex = make()
    return ex, [(time.perf_counter() - t0, time.process_time() - c0)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeats', type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n = args.repeats
    print(f'torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
    rows = []
    t0 = time.perf_counter(); model = explorer_model(); t_model = time.perf_counter() - t0

    ex, t = timed(lambda: ShapeExplorer(512, 512)); rows.append(('shapes', 'build', t))
    rows.append(('shapes', 'image H', moves(ex, ex.height, [480 + 32 * (i % 3) for i in range(n)])))
    rows.append(('shapes', 'queries Q', moves(ex, ex.num_queries, [100 + 50 * i for i in range(n)])))

    ex, t = timed(lambda: AttentionExplorer(model, height=512, width=512)); rows.append(('attention', 'build (forward + maps)', t))
    rows.append(('attention', 'pixel x', moves(ex, ex.x, [40 + 90 * i for i in range(n)])))
    rows.append(('attention', 'query', moves(ex, ex.query, [3 * i + 1 for i in range(n)])))
    rows.append(('attention', 'decoder layer', moves(ex, ex.dec_layer, [i % 2 for i in range(n)])))
    rows.append(('attention', 'crowd seed (new image)', moves(ex, ex.seed, [1 + i for i in range(2)])))

    ex, t = timed(lambda: MatchingExplorer(model, height=512, width=512)); rows.append(('matching', 'build (forward + matching)', t))
    rows.append(('matching', 'threshold', moves(ex, ex.threshold, [0.05 * i for i in range(n)])))
    rows.append(('matching', 'decoder layer', moves(ex, ex.layer, [i % 2 for i in range(n)])))
    rows.append(('matching', 'pair (head)', moves(ex, ex.pair, [5 * i + 1 for i in range(n)])))
    rows.append(('matching', 'σ', moves(ex, ex.sigma, [4. + 4 * i for i in range(n)])))

    ex, t = timed(PosEncExplorer); rows.append(('pos_enc', 'build', t))
    rows.append(('pos_enc', 'temperature', moves(ex, ex.temperature, [10. ** (1 + i) for i in range(n)])))
    rows.append(('pos_enc', 'channel', moves(ex, ex.channel, [10 * i + 1 for i in range(n)])))

    print(f'model built in {t_model:.2f} s')
    print(f"{'explorer':10s} {'control':28s} {'wall median':>11s} {'wall max':>8s} {'CPU median':>10s} {'CPU max':>7s}  (seconds)")
    for name, control, ts in rows:
        wall, cpu = [w for w, c in ts], [c for w, c in ts]
        print(f'{name:10s} {control:28s} {statistics.median(wall):11.3f} {max(wall):8.3f} {statistics.median(cpu):10.3f} {max(cpu):7.3f}')
    sliders = [ts for name, control, ts in rows if 'build' not in control and 'new image' not in control]
    worst_median = max(statistics.median(w for w, c in ts) for ts in sliders)
    worst_cpu = max(c for ts in sliders for w, c in ts)
    print(f'slider callbacks: slowest median {worst_median:.3f} s wall, slowest {worst_cpu:.3f} s CPU '
          f'({"under" if max(worst_median, worst_cpu) < 1 else "OVER"} 1 s); load average now {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
