"""Forward and training-step time of the official CLTR model and of cltr_learn's, interleaved on one machine.

Each round runs the official benchmark first (its own virtual environment: `--official-python`, the script
`bench_official.py` of the official code's measuring folder, `--official-bench`), then `bench/model.py` of this
project (fp32, and with `--channels-last` a second variant), each in a fresh process with the same thread count,
batch 4 × 3 × 256 × 256, official configuration (ResNet-50 with random weights, 6 + 6 layers, 500 queries).
Interleaving puts both under the same machine state; the medians over the rounds and their ratio are printed.

    .venv/bin/python bench/vs_official.py --official-python /path/to/venv/bin/python \\
        --official-bench /path/to/oracle/bench_official.py [--rounds 3] [--channels-last]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpu_name() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return 'unknown CPU'


def figures(cmd: list[str], keys: tuple[str, ...]) -> dict:
    "Run `cmd`; return the `key=value` figures named in `keys` from its output."
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0: sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    out = {}
    for k in keys:
        m = re.search(rf'{k}=([0-9.]+)', r.stdout)
        if m is None: sys.exit(f"no {k}= in the output of {' '.join(cmd)}:\n{r.stdout[-2000:]}")
        out[k] = float(m.group(1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--official-python', required=True, help="python of the official code's virtual environment")
    p.add_argument('--official-bench', required=True, help='bench_official.py of the official code')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--channels-last', action='store_true', help="also time this project's model in channels-last layout")
    a = p.parse_args()
    official = [a.official_python, a.official_bench]
    ours = {'cltr_learn fp32': [sys.executable, str(HERE / 'model.py'), '--threads', str(a.threads)]}
    if a.channels_last: ours['cltr_learn channels-last'] = ours['cltr_learn fp32'] + ['--channels-last']
    keys_off, keys_ours = ('official_forward_b4_s', 'official_train_step_b4_s'), ('forward_b4_s', 'train_step_b4_s')
    runs = {name: [] for name in ['official', *ours]}
    print(f"{cpu_name()}, {a.threads} threads, {a.rounds} rounds (official first in each)")
    for r in range(a.rounds):
        f = figures(official, keys_off)
        runs['official'].append((f[keys_off[0]], f[keys_off[1]]))
        for name, cmd in ours.items():
            f = figures(cmd, keys_ours)
            runs[name].append((f[keys_ours[0]], f[keys_ours[1]]))
        print(f"round {r + 1}: " + ', '.join(f"{n} {v[-1][0]:.3f} / {v[-1][1]:.3f} s" for n, v in runs.items()), flush=True)
    med = {n: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for n, v in runs.items()}
    print(f"\n{'':<28}{'forward':>9} {'train step':>11}   (medians over rounds, batch 4 x 256²)")
    for n, (fwd, step) in med.items():
        ratio = '' if n == 'official' else f"   {med['official'][0] / fwd:.2f}x / {med['official'][1] / step:.2f}x faster"
        print(f"{n:<28}{fwd:>8.3f}s {step:>10.3f}s{ratio}")


if __name__ == '__main__':
    main()
