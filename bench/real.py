"""The shipped real-crowd models on the ShanghaiTech test splits, beside the image-blind baselines and published numbers.

For each part (A: dense crowds, B: streets) the script reads the test split, predicts every image whole (crop and
stitch, all queries kept), and scores the predictions at the threshold stored in the model (chosen on validation
images from the training split, never on test): MAE, MSE (root mean square, as the field reports it), NAE, and F1
of the one-to-one matching at σ = 4 and 8 px. Beside it: the synthetic-crowd model the real ones start from, the
mean-count and grid baselines (the training split's heads per pixel), and numbers published for MCNN and CLTR.
The time is the wall time of predicting the test images, divided by their number.

    .venv/bin/python bench/real.py --root /path/to/ShanghaiTech                  # both parts, the shipped models
    .venv/bin/python bench/real.py --root ... --parts b --model b=runs/shb/model.safetensors --limit 40
    .venv/bin/python bench/real.py --root ... --figures docs/screenshots         # also hits/misses of a typical and the worst image
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import torch

from cltr_learn.datasets import evaluation_items, read_dataset, records_density
from cltr_learn.deformable import load_any_model
from cltr_learn.real_crowds import count_errors, hits_and_misses, pretrained_path
from cltr_learn.training import image_blind_baselines, predict_all, score_predictions

# MAE / MSE published on the test splits (MCNN: Zhang et al., CVPR 2016; CLTR: Liang et al., ECCV 2022, with ImageNet
# ResNet-50 weights, 1500 epochs on a GPU) and CLTR's F1 at σ = 4 / 8 where the paper gives it.
PUBLISHED = {'a': [('MCNN (published)', 110.2, 173.2, None, None), ('CLTR (published)', 56.9, 95.2, 0.432, 0.742)],
             'b': [('MCNN (published)', 26.4, 41.3, None, None), ('CLTR (published)', 6.5, 10.6, None, None)]}


def row(name: str, mae: float, mse: float, nae=None, f1_4=None, f1_8=None, extra: str = '') -> str:
    f = lambda v, w, d: f"{v:{w}.{d}f}" if v is not None else f"{'-':>{w}}"
    return f"{name:<34}{f(mae, 8, 2)} {f(mse, 8, 2)} {f(nae, 6, 3)} {f(f1_4, 6, 3)} {f(f1_8, 6, 3)}  {extra}"


def figures(part: str, model, items, preds, threshold: float, out: Path) -> list[Path]:
    "Hits and misses at σ = 8 px on the image with the median absolute count error and on the worst one; attention on the first."
    err = count_errors(preds, items, threshold)
    order = np.argsort(np.abs(err), kind='stable')
    written = []
    for label, k in (('typical', order[len(order) // 2]), ('worst', order[-1])):
        image, gt = items[k]
        keep = preds[k]['scores'] >= threshold
        fig, ax = plt.subplots(figsize=(8, 8 * image.shape[0] / image.shape[1]))
        hits_and_misses(image, gt, preds[k]['points'][keep].numpy(), 8, ax=ax,
                        title=f"part {part.upper()} test, {label} image ({int(keep.sum())} predicted, {len(gt)} true): σ = 8 px")
        path = out / f"real_sh{part}_{label}.jpg"
        fig.savefig(path, dpi=90, bbox_inches='tight', pil_kwargs=dict(quality=85)); plt.close(fig)
        written.append(path)
    written.append(attention_figure(part, model, *items[order[len(order) // 2]], out))
    return written


def busiest_window(image: np.ndarray, points: np.ndarray, side: int) -> tuple[int, int]:
    "Top-left corner (x, y) of the `side`-pixel window, on a grid of side/4 steps, holding the most heads."
    H, W = image.shape[:2]
    step = max(1, side // 4)
    corners = [(x, y) for y in range(0, max(H - side, 0) + 1, step) for x in range(0, max(W - side, 0) + 1, step)]
    inside = lambda x, y: int(((points[:, 0] >= x) & (points[:, 0] < x + side) & (points[:, 1] >= y) & (points[:, 1] < y + side)).sum())
    return max(corners, key=lambda c: inside(*c))


def attention_figure(part: str, model, image: np.ndarray, points: np.ndarray, out: Path, side: int = 256) -> Path:
    "The attention explorer on the busiest window of `image`: the query with the highest score, its cross-attention."
    from cltr_learn.widgets import AttentionExplorer
    x, y = busiest_window(image, points, side)
    crop = np.ascontiguousarray(image[y:y + side, x:x + side])
    explorer = AttentionExplorer(model=model, image=crop)
    logits = explorer.state['maps']['outputs']['pred_logits'][0, :, 1]
    q = int(logits.argmax())
    px, py = (explorer.state['maps']['outputs']['pred_points'][0, q, :2] * torch.tensor([crop.shape[1], crop.shape[0]])).tolist()
    explorer.set(query=q, x=min(int(px), crop.shape[1] - 1), y=min(int(py), crop.shape[0] - 1))
    path = out / f"real_sh{part}_attention.png"
    path.write_bytes(explorer.png())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', required=True, help='the ShanghaiTech folder holding part_A and part_B')
    p.add_argument('--parts', nargs='+', default=['a', 'b'], choices=['a', 'b'])
    p.add_argument('--model', action='append', default=[], metavar='PART=FILE',
                   help="a model file for a part instead of the shipped one, e.g. b=runs/shb/model.safetensors")
    p.add_argument('--limit', type=int, default=None, help='only the first N test images (quicker, less exact)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--figures', default=None, metavar='DIR', help='write hits/misses figures of each part here')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    chosen = dict(m.split('=', 1) for m in args.model)
    print(f"threads {args.threads}; F1 at the model's stored threshold; MSE is the root mean square error")
    for part in args.parts:
        spec = f"sh{part}:{args.root}"
        items = evaluation_items(read_dataset(spec, 'test'))[:args.limit]
        density = records_density(read_dataset(spec, 'train'))
        gt_mean = np.mean([len(g) for _, g in items])
        print(f"\nShanghaiTech part {part.upper()} test: {len(items)} images, mean true count {gt_mean:.1f}")
        print(f"{'':<34}{'MAE':>8} {'MSE':>8} {'NAE':>6} {'F1@4':>6} {'F1@8':>6}")
        models = [(f"cltr_learn sh{part}", chosen.get(part) or str(pretrained_path(f'sh{part}'))),
                  ('cltr_learn synthetic (the start)', str(pretrained_path('synthetic')))]
        for name, path in models:
            model = load_any_model(path)
            t0 = time.perf_counter()
            preds = predict_all(model, items)
            seconds = (time.perf_counter() - t0) / len(items)
            thr = model.cfg.threshold
            m = score_predictions(preds, items, thr)
            print(row(name, m['mae'], m['mse'], m['nae'], m['f1_4'], m['f1_8'], f"thr {thr:.2f}, {seconds:.2f} s/image"))
            if name.startswith('cltr_learn sh') and args.figures:
                out = Path(args.figures); out.mkdir(parents=True, exist_ok=True)
                written = figures(part, model, items, preds, thr, out)
        b = image_blind_baselines(items, density)
        print(row('baseline: mean count', b['mean_count']['mae'], b['mean_count']['mse'], b['mean_count']['nae']))
        print(row('baseline: grid', b['grid']['mae'], b['grid']['mse'], b['grid']['nae'], b['grid']['f1_4'], b['grid']['f1_8']))
        for name, mae, mse, f4, f8 in PUBLISHED[part]: print(row(name, mae, mse, None, f4, f8))
        if args.figures: print('figures: ' + ', '.join(map(str, written)))


if __name__ == '__main__':
    main()
