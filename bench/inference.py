"""Inference speed and memory of `cltr_learn.inference.predict`: fp32 against bf16, PyTorch against onnxruntime.

The default model is `CLTRConfig()` (resnet50, 6 + 6 layers, 500 queries, 256-pixel crops) with random
weights: speed and memory do not depend on the weights. The precision and ONNX rows use a trained model (the
shipped synthetic-crowd model, or --model) on --pictures held-out synthetic pictures, so that the accuracy each
one keeps can be compared.

Prints (one `key=value` per line):
  cpu_mpix_per_s        megapixels per second on the CPU for a --size image (median of --repeats runs)
  cuda_mpix_per_s       the same on the GPU, when one is available
  <model>_<prec>_mpix_per_s   whole-picture predict of the official-size model and the trained model, fp32 and bf16
  trained_<prec>_count_mae, _f1_8   the trained model's count error and F1 at 8 px on the held-out pictures
  bf16_count_diff, bf16_f1_8_diff   bf16 minus fp32 on those pictures (mean absolute count difference per picture)
  onnx_*                crops per second of one batch through PyTorch and through onnxruntime, and the largest difference
  rss_before_predict_mb peak resident memory of a fresh process once the model is built, before predicting
  peak_rss_mb           peak resident memory of that process after predicting a --rss-size image on the CPU

bf16 runs under autocast only where the CPU has AVX512-BF16 or AMX (`bf16_supported`); elsewhere it prints n/a.
The peak RSS is measured in a child process (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), so nothing
from the speed runs counts against it.

Usage:  python bench/inference.py [--size 1024x768] [--repeats 3] [--rss-size 4000x3000] [--threads 2] [--pictures 16]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import tempfile
from pathlib import Path

import numpy as np
import torch

from cltr_learn.inference import bf16_supported, predict
from cltr_learn.deformable import load_any_model
from cltr_learn.model import CLTRConfig, build_model
from cltr_learn.real_crowds import model_file
from cltr_learn.training import get_recipe, score_predictions, synthetic_images


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


def timed(fn, repeats: int) -> tuple[float, object]:
    "(median seconds of `repeats` calls after one warm-up, the last result)."
    out = fn(); times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def precision_rows(name: str, model, pictures: list, repeats: int, batch_size: int) -> dict:
    "fp32 and bf16 whole-picture throughput of `model` on `pictures`, and (for a trained model) the metrics each keeps."
    area = sum(im.shape[0] * im.shape[1] for im, _ in pictures) / 1e6
    out = {}
    for prec in ('fp32', 'bf16'):
        if prec == 'bf16' and not bf16_supported('cpu'):
            print(f'{name}_bf16_mpix_per_s=n/a (no AVX512-BF16 or AMX on this CPU)'); continue
        run = lambda: [predict(model, im, threshold=0.0, batch_size=batch_size, precision=prec) for im, _ in pictures]
        seconds, preds = timed(run, repeats)
        print(f'{name}_{prec}_mpix_per_s={area / seconds:.4f}', flush=True)
        if pictures[0][1] is not None:
            m = score_predictions(preds, pictures, model.cfg.threshold, sigmas=(8,))
            counts = np.array([int((p['scores'] >= model.cfg.threshold).sum()) for p in preds])
            print(f'{name}_{prec}_count_mae={m["mae"]:.3f} {name}_{prec}_f1_8={m["f1_8"]:.4f}')
            out[prec] = (counts, m['f1_8'])
    if len(out) == 2:
        print(f'bf16_count_diff={np.abs(out["bf16"][0] - out["fp32"][0]).mean():.3f} '
              f'bf16_f1_8_diff={out["bf16"][1] - out["fp32"][1]:+.4f}')
    return out


def onnx_rows(model, repeats: int, batch_size: int) -> None:
    "One batch of crops through the PyTorch model and through its ONNX export in onnxruntime."
    from cltr_learn.deploy import OnnxCrops, export_onnx
    c = model.cfg.crop_size
    crops = torch.randn(batch_size, 3, c, c, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(batch_size, c, c, dtype=torch.bool)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_model = OnnxCrops(export_onnx(model, Path(tmp) / 'model.onnx'), threads=torch.get_num_threads())
        with torch.inference_mode():
            t_torch, ref = timed(lambda: model(crops, mask), repeats)
        t_onnx, got = timed(lambda: onnx_model(crops, mask), repeats)
    diff = max(float((got[k] - ref[k]).abs().max()) for k in ('pred_logits', 'pred_points'))
    print(f'onnx_batch={batch_size}x{c}x{c} onnx_torch_crops_per_s={batch_size / t_torch:.1f} '
          f'onnx_ort_crops_per_s={batch_size / t_onnx:.1f} onnx_max_abs_diff={diff:.2e}', flush=True)


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
    p.add_argument('--model', default='synthetic', help="trained model for the precision and ONNX rows: a file or a shipped name")
    p.add_argument('--pictures', type=int, default=16, help='held-out synthetic pictures for the precision rows')
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
    precision_rows('official_size', model, [(img, None)], a.repeats, a.batch_size)
    trained = load_any_model(model_file(a.model))
    tc = get_recipe('cpu-fast')[1]
    pictures = synthetic_images(a.pictures, tc.image_size, tc.heads, seed=tc.seed + 2000)
    print(f'trained_model={model_file(a.model)} pictures={a.pictures}x{tc.image_size}x{tc.image_size} threshold={trained.cfg.threshold}')
    precision_rows('trained', trained, pictures, a.repeats, a.batch_size)
    onnx_rows(trained, a.repeats, a.batch_size)
    if a.rss_size.lower() != 'none':
        r = subprocess.run([sys.executable, __file__, '--rss-child', a.rss_size, '--threads', str(a.threads),
                            '--batch-size', str(a.batch_size)], capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        if r.returncode != 0: sys.exit(f'peak-RSS run failed:\n{r.stderr}')


if __name__ == '__main__':
    main()
