"""Training checkpoints: a run killed half-way and resumed gives the same losses and weights as an uninterrupted run;
a NaN stops training with a clear message and keeps the last good checkpoint; checkpoints load without pickled code."""
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cltr_learn.model import CLTRConfig, build_model, load_model
from cltr_learn.synthetic import SyntheticCrowds
from cltr_learn.runs import CHECKPOINT_NAME, load_checkpoint, run_training
from cltr_learn.training import NonFiniteLoss, TrainConfig

ROOT = Path(__file__).resolve().parents[1]

# a tiny model with dropout on, so that resuming must also restore the random state
TINY = dict(backbone='resnet18', feature_layer='layer1', hidden_dim=32, nheads=2, enc_layers=1, dec_layers=2,
            dim_feedforward=64, num_queries=16, crop_size=32, dropout=0.1)
STEPS, KILL_AT = 16, 8

CHILD = textwrap.dedent(f"""
    import sys, time, torch
    sys.path.insert(0, {str(ROOT)!r})
    from cltr_learn.core import seed_everything
    from cltr_learn.model import CLTRConfig, build_model
    from cltr_learn.synthetic import SyntheticCrowds
    from cltr_learn.runs import run_training
    from cltr_learn.training import TrainConfig

    class Slow(SyntheticCrowds):             # a slow data source, so the parent can kill the run mid-way
        def __getitem__(self, i):
            time.sleep(0.05)
            return super().__getitem__(i)

    out_dir, resume = sys.argv[1], sys.argv[2] == 'resume'
    torch.set_num_threads(1)
    seed_everything(0)
    model = build_model(CLTRConfig(**{TINY!r}))
    data = Slow(6, 64, 64, (2, 12), crop_size=32, seed=0, cache=True, max_num=16)
    tc = TrainConfig(steps={STEPS}, batch_size=2, lr=1e-3, lr_backbone=1e-3, warmup_steps=3, lr_drop=0.5,
                     ckpt_every=2, eval_every=0, num_workers=0, seed=0)
    run_training(model, data, tc, out_dir, resume=resume, progress=False)
    print('finished', flush=True)
""")


def _child(tmp_path, out_dir, mode):
    script = tmp_path / 'child.py'
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, '-u', str(script), str(out_dir), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path):
    full = _child(tmp_path, tmp_path / 'full', 'fresh')
    out, _ = full.communicate(timeout=300)
    assert full.returncode == 0, out

    run = _child(tmp_path, tmp_path / 'cut', 'fresh')
    for line in run.stdout:                                    # kill the run as soon as step KILL_AT is saved
        if f'checkpoint at step {KILL_AT}' in line:
            run.send_signal(signal.SIGKILL)
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    cut = load_checkpoint(tmp_path / 'cut' / CHECKPOINT_NAME)
    assert KILL_AT <= cut['step'] < STEPS

    resumed = _child(tmp_path, tmp_path / 'cut', 'resume')
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"resumed from" in out
    assert not list((tmp_path / 'cut').glob('*.tmp')), 'a temporary file of the killed write was left behind'

    a = load_checkpoint(tmp_path / 'full' / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / 'cut' / CHECKPOINT_NAME)
    assert a['step'] == b['step'] == STEPS
    assert len(a['history']['loss']) == STEPS
    assert a['history']['loss'] == b['history']['loss']         # bit-identical losses, step by step
    assert a['history']['lr'] == b['history']['lr']
    for k, v in a['model'].items():
        assert torch.equal(v, b['model'][k]), k
    # the losses did change over the run (the comparison is not between constants)
    assert len(set(a['history']['loss'])) == STEPS


class NaNAfter(SyntheticCrowds):
    "Returns images full of NaN from the `bad`-th item on (items are requested in order, 2 per step)."
    def __init__(self, *args, bad: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad, self.calls = bad, 0

    def __getitem__(self, i):
        item = super().__getitem__(i)
        self.calls += 1
        if self.calls > self.bad: item['image'] = torch.full_like(item['image'], math.nan)
        return item


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model(CLTRConfig(**TINY))
    data = NaNAfter(4, 64, 64, (2, 12), crop_size=32, seed=0, cache=True, max_num=16, bad=2 * 5)   # step 5 is bad
    tc = TrainConfig(steps=10, batch_size=2, ckpt_every=2, eval_every=0, num_workers=0)
    with pytest.raises(NonFiniteLoss) as err:
        run_training(model, data, tc, tmp_path, progress=False)
    msg = str(err.value)
    assert 'at step 5' in msg and 'last good checkpoint (step 4)' in msg and CHECKPOINT_NAME in msg, msg
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert ckpt['step'] == 4
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values() if v.is_floating_point())
    assert all(math.isfinite(x) for x in ckpt['history']['loss'])
    assert not (tmp_path / (CHECKPOINT_NAME + '.tmp')).exists()


def test_checkpoint_is_plain_data_and_loads_as_a_model(tmp_path):
    torch.manual_seed(0)
    model = build_model(CLTRConfig(**TINY))
    data = SyntheticCrowds(4, 64, 64, (2, 12), crop_size=32, seed=0, cache=True, max_num=16)
    run_training(model, data, TrainConfig(steps=2, batch_size=2, eval_every=0, num_workers=0), tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    ckpt = torch.load(path, weights_only=True)                 # no pickled code: only tensors and plain containers
    assert ckpt['config'] == model.cfg.to_dict() and ckpt['step'] == 2
    assert all(isinstance(v, torch.Tensor) for v in ckpt['rng'].values())
    loaded = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v.cpu(), loaded.state_dict()[k]), k
    with pytest.raises(FileNotFoundError, match='no file'):
        load_checkpoint(tmp_path / 'missing.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='junk.pt'):
        load_checkpoint(tmp_path / 'junk.pt')
