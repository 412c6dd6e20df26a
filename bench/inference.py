"""Inference speed and memory of `cltr_learn.inference.predict` with the default model.

The default model is `CLTRConfig()` (resnet50, 6 + 6 layers, 500 queries, 256-pixel crops) with random
weights: speed and memory do not depend on the weights.

Prints (one `key=value` per line):
  cpu_mpix_per_s        megapixels per second on the CPU for a --size image (median of --repeats runs)
  cuda_mpix_per_s       the same on the GPU, when one is available
  rss_before_predict_mb peak resident memory of a fresh process once the model is built, before predicting
  peak_rss_mb           peak resident memory of that process after predicting a --rss-size image on the CPU

The peak RSS is measured in a child process (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), so nothing
from the speed runs counts against it.

Usage:  python bench/inference.py [--size 1024x768] [--repeats 3] [--rss-size 4000x3000] [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from cltr_learn.inference import predict
from cltr_learn.model import CLTRConfig, build_model


def parse_size(s: str) -> tuple[int, int]:
    "'WxH' -> (W, H)."
    w, h = s.lower().split('x')
    return int(w), int(h)


def image(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def throughput(model, img: np.ndarray, device: str, repeats: int, batch_size: int) -> float:
    "Median megapixels per second of `predict` on `img`, after one warm-up run."
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    predict(model, img, batch_size=batch_size, device=device); sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(model, img, batch_size=batch_size, device=device); sync()
        times.append(time.perf_counter() - t0)
    return img.shape[0] * img.shape[1] / 1e6 / statistics.median(times)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: kilobytes


def rss_child(size: str, threads: int, batch_size: int) -> None:
    "Run in a fresh process: build the model, predict one image on the CPU, print the peak RSS."
    torch.set_num_threads(threads)
    model = build_model(CLTRConfig()).eval()
    w, h = parse_size(size)
    img = image(w, h)
    print(f'rss_before_predict_mb={rss_mb():.0f}', flush=True)
    t0 = time.perf_counter()
    res = predict(model, img, batch_size=batch_size, device='cpu')
    print(f'rss_image={w}x{h}')
    print(f'rss_predict_s={time.perf_counter() - t0:.1f}')
    print(f'rss_count={res["count"]}')
    print(f'peak_rss_mb={rss_mb():.0f}')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', default='1024x768', help='image size WxH for the speed runs')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--rss-size', default='4000x3000', help="image size WxH for the peak-memory run ('none' to skip)")
    p.add_argument('--threads', type=int, default=2, help='CPU threads (torch.set_num_threads)')
    p.add_argument('--batch-size', type=int, default=8, help='crops per model call')
    p.add_argument('--rss-child', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.rss_child:
        return rss_child(a.rss_child, a.threads, a.batch_size)

    torch.set_num_threads(a.threads)
    cfg = CLTRConfig()
    print(f'model=CLTRConfig() backbone={cfg.backbone} enc={cfg.enc_layers} dec={cfg.dec_layers} '
          f'queries={cfg.num_queries} crop={cfg.crop_size} batch_size={a.batch_size} threads={a.threads}')
    model = build_model(cfg).eval()
    w, h = parse_size(a.size)
    img = image(w, h)
    n_crops = -(-h // cfg.crop_size) * -(-w // cfg.crop_size)
    print(f'speed_image={w}x{h} crops={n_crops}')
    print(f'cpu_mpix_per_s={throughput(model, img, "cpu", a.repeats, a.batch_size):.4f}', flush=True)
    if torch.cuda.is_available():
        model.to('cuda')
        print(f'cuda_device={torch.cuda.get_device_name(0)}')
        print(f'cuda_mpix_per_s={throughput(model, img, "cuda", a.repeats, a.batch_size):.3f}', flush=True)
        model.to('cpu')
    else:
        print('cuda_mpix_per_s=n/a (no GPU)')
    if a.rss_size.lower() != 'none':
        r = subprocess.run([sys.executable, __file__, '--rss-child', a.rss_size, '--threads', str(a.threads),
                            '--batch-size', str(a.batch_size)], capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        if r.returncode != 0: sys.exit(f'peak-RSS run failed:\n{r.stderr}')


if __name__ == '__main__':
    main()
