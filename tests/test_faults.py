"""Faults that must not lose or silently corrupt a result: one run per output folder, no silent reuse of a finished
run's folder, a resume that would train nothing, a split that does not exist, and a checkpoint write cut short."""
import os
import subprocess
import sys

import torch

from cltr_learn.model import CLTRConfig, build_model
from cltr_learn.synthetic import SyntheticCrowds
from cltr_learn.runs import CHECKPOINT_NAME, RunFolderLock, load_checkpoint, run_training, save_checkpoint
from cltr_learn.training import BudgetSchedule, TrainConfig, build_optimizer, new_history

TINY = CLTRConfig(backbone='resnet18', feature_layer='layer1', hidden_dim=32, nheads=2, enc_layers=1, dec_layers=2,
                  dim_feedforward=64, num_queries=16, crop_size=32, dropout=0.0)


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'cltr_learn.cli', *args], capture_output=True, text=True, timeout=timeout)


def checkpoint_at(folder, step):
    model = build_model(TINY)
    tc = TrainConfig(steps=10, batch_size=2)
    opt = build_optimizer(model, tc)
    return save_checkpoint(folder / CHECKPOINT_NAME, model, opt, BudgetSchedule(opt, tc), step, tc, new_history())


def test_second_run_into_a_locked_folder_fails_at_once_naming_the_holder(tmp_path):
    with RunFolderLock(tmp_path / 'run'):
        r = cli('train', '--data', 'synthetic', '--out', str(tmp_path / 'run'), '--steps', '2', timeout=60)
    assert r.returncode == 2, r.stderr[-800:]
    assert 'is in use by another run' in r.stderr and f'process {os.getpid()}' in r.stderr and str(tmp_path / 'run') in r.stderr
    assert not (tmp_path / 'run' / CHECKPOINT_NAME).exists()


def test_demo_into_a_locked_folder_fails_too(tmp_path):
    with RunFolderLock(tmp_path):
        r = cli('demo', '--out', str(tmp_path), '--steps', '1', timeout=60)
    assert r.returncode == 2 and 'in use by another run' in r.stderr, r.stderr[-800:]


def test_a_finished_run_is_not_overwritten_without_being_asked(tmp_path):
    checkpoint_at(tmp_path, 6)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    r = cli('train', '--data', 'synthetic', '--out', str(tmp_path), '--steps', '2', timeout=60)
    assert r.returncode == 2, r.stderr[-800:]
    assert 'already holds a run (checkpoint.pt)' in r.stderr and '--resume' in r.stderr and '--overwrite' in r.stderr
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    r = cli('train', '--data', 'synthetic', '--out', str(tmp_path), '--resume', '--overwrite', timeout=60)
    assert r.returncode == 2 and 'exclude each other' in r.stderr


def test_resume_that_would_train_nothing_says_so(tmp_path):
    checkpoint_at(tmp_path, 6)
    r = cli('train', '--data', 'synthetic', '--out', str(tmp_path), '--resume', '--steps', '3', timeout=60)
    assert r.returncode == 2, r.stderr[-800:]
    assert 'already at step 6 of 3' in r.stderr and 'nothing to train' in r.stderr


def test_unwritable_output_folder_is_an_argument_error(tmp_path):
    (tmp_path / 'file').write_text('a file, not a folder')
    r = cli('train', '--data', 'synthetic', '--out', str(tmp_path / 'file' / 'run'), '--steps', '2', timeout=60)
    assert r.returncode == 2, r.stderr[-800:]
    assert 'cannot be written' in r.stderr and 'Traceback' not in r.stderr


def test_eval_rejects_a_split_synthetic_data_does_not_have(tmp_path):
    path = checkpoint_at(tmp_path, 1)
    r = cli('eval', '--checkpoint', str(path), '--data', 'synthetic', '--split', 'nosuch', timeout=60)
    assert r.returncode == 2, r.stderr[-800:]
    assert "'nosuch'" in r.stderr and "'test'" in r.stderr


def test_checkpoint_every_option_reaches_the_run(tmp_path):
    r = cli('train', '--help')
    assert '--checkpoint-every' in r.stdout and '--checkpoint-minutes' in r.stdout and '--overwrite' in r.stdout
    r = cli('train', '--data', 'synthetic', '--out', str(tmp_path), '--checkpoint-every', '0', timeout=60)
    assert r.returncode == 2 and 'expected a positive integer' in r.stderr


def test_leftover_tmp_is_removed_and_time_based_checkpoints_are_written(tmp_path, monkeypatch):
    import cltr_learn.runs as runs
    saved, real_save = [], runs.save_checkpoint
    monkeypatch.setattr(runs, 'save_checkpoint', lambda path, model, opt, sched, step, *a, **k:
                        saved.append(step) or real_save(path, model, opt, sched, step, *a, **k))
    (tmp_path / (CHECKPOINT_NAME + '.tmp')).write_bytes(b'')          # a write cut short by kill -9
    torch.manual_seed(0)
    data = SyntheticCrowds(4, 64, 64, (2, 8), crop_size=32, seed=0, cache=True, max_num=16)
    tc = TrainConfig(steps=3, batch_size=2, ckpt_every=0, ckpt_minutes=1e-9, eval_every=0, num_workers=0)
    lines = []
    run_training(build_model(TINY), data, tc, tmp_path, progress=False, log=lines.append)
    assert any('removed' in l and '.tmp' in l for l in lines), lines
    assert not (tmp_path / (CHECKPOINT_NAME + '.tmp')).exists()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)['step'] == 3
    assert saved == [1, 2, 3], saved                                   # every step: the clock interval had passed each time
    saved.clear()
    run_training(build_model(TINY), data, TrainConfig(steps=3, batch_size=2, ckpt_every=0, ckpt_minutes=0, eval_every=0,
                                                      num_workers=0), tmp_path / 'b', progress=False, log=lines.append)
    assert saved == [3], saved                                         # both intervals off: only the final checkpoint
