"""Training throughput (crops per second) of a recipe, on the CPU and, when there is one, on a GPU, with and without
bf16 mixed precision (and optionally torch.compile on the GPU).

    python bench/train.py                       # official recipe (resnet50, 6+6 layers, 500 queries, 256 crops)
    python bench/train.py --recipe cpu-fast     # the small CPU recipe
    python bench/train.py --compile             # also time torch.compile on the GPU
    python bench/train.py --fast-cpu            # CPU lines with Appendix A's paths (16-bit dropout, folded batch
                                                # norm, matchings solved in threads), as the demo and the CLI train

Each line times `train_step` (forward, matching, losses, backward, Adam) on batches of synthetic crowd crops made
beforehand, so data loading is not counted; a last line times making the crops themselves (one CPU thread, as in a
data-loader worker). Medians over the timed steps after warm-up steps. On a machine shared with other jobs the CPU
figures vary from run to run; say so when you quote them.
"""
import argparse
import statistics
import time

import torch

from cltr_learn.batching import collate
from cltr_learn.core import seed_everything
from cltr_learn.fast_cpu import threaded_map, use_fast_cpu_paths
from cltr_learn.losses import build_criterion
from cltr_learn.model import build_model
from cltr_learn.synthetic import SyntheticCrowds
from cltr_learn.training import build_optimizer, get_recipe, prepare_model, train_step


def make_batches(cfg, tc, batch_size: int, n: int) -> list:
    data = SyntheticCrowds(8, tc.image_size, tc.image_size, tc.heads, crop_size=cfg.crop_size, seed=0, cache=True,
                           max_num=cfg.num_queries)
    return [collate([data[(i * batch_size + j) % len(data)] for j in range(batch_size)]) for i in range(n)]


def time_steps(cfg, tc, device: str, batch_size: int, amp: bool, compile_: bool, warmup: int, steps: int,
               fast_cpu: bool = False) -> list:
    seed_everything(0)
    model = prepare_model(build_model(cfg), tc).to(device).train()
    criterion, optimizer = build_criterion(cfg), build_optimizer(model, tc)
    if fast_cpu and device == 'cpu':
        use_fast_cpu_paths(model)
        criterion = build_criterion(cfg, map_fn=threaded_map())
    net = torch.compile(model) if compile_ else model
    batches = make_batches(cfg, tc, batch_size, 4)
    times = []
    for i in range(warmup + steps):
        if device == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        train_step(net, criterion, batches[i % len(batches)], optimizer, device, amp=amp, clip_max_norm=tc.clip_max_norm)
        if device == 'cuda': torch.cuda.synchronize()
        if i >= warmup: times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--recipe', default='official', help="'official' (default) or 'cpu-fast'")
    p.add_argument('--threads', type=int, default=2, help='CPU threads (default 2)')
    p.add_argument('--cpu-batch', type=int, default=None, help='crops per step on the CPU (default: 4 official, recipe batch otherwise)')
    p.add_argument('--gpu-batch', type=int, default=None, help='crops per step on the GPU (default: the recipe batch)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--compile', action='store_true', help='also time torch.compile on the GPU')
    p.add_argument('--no-cpu', action='store_true', help='skip the CPU measurements')
    p.add_argument('--fast-cpu', action='store_true', help="CPU: Appendix A's fast paths and threaded matching")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg, tc = get_recipe(a.recipe)
    runs = []
    if not a.no_cpu:
        cpu_batch = a.cpu_batch or (4 if a.recipe == 'official' else tc.batch_size)
        runs += [('cpu', cpu_batch, False, False), ('cpu', cpu_batch, True, False)]
    if torch.cuda.is_available():
        gpu_batch = a.gpu_batch or tc.batch_size
        runs += [('cuda', gpu_batch, False, False), ('cuda', gpu_batch, True, False)]
        if a.compile: runs += [('cuda', gpu_batch, False, True), ('cuda', gpu_batch, True, True)]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
    print(f"recipe {a.recipe}: {cfg.backbone} {cfg.feature_layer}, {cfg.enc_layers}+{cfg.dec_layers} layers, "
          f"{cfg.num_queries} queries, crops {cfg.crop_size}; CPU threads {a.threads}; GPU: {gpu}")
    for device, batch, amp, comp in runs:
        t = statistics.median(time_steps(cfg, tc, device, batch, amp, comp, a.warmup, a.steps, a.fast_cpu))
        fast = f" fast_cpu={'on' if a.fast_cpu else 'off'}" if device == 'cpu' else ''
        print(f"train_throughput device={device}{fast} amp={'bf16' if amp else 'off'} compile={'on' if comp else 'off'} "
              f"batch={batch} step_s={t:.3f} crops_per_s={batch / t:.2f}", flush=True)
    torch.set_num_threads(1)
    data = SyntheticCrowds(16, tc.image_size, tc.image_size, tc.heads, crop_size=cfg.crop_size, seed=0, cache=True,
                           max_num=cfg.num_queries)
    for i in range(16): data.render(i)                      # pictures drawn once (the training data caches them)
    t = time.perf_counter(); n = 64
    for i in range(n): data[i % 16]
    print(f"data_throughput crops_per_s={n / (time.perf_counter() - t):.1f} (cached pictures, 1 thread)")


if __name__ == '__main__':
    main()
