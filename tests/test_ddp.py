"""Distributed data-parallel training on 2 CPU processes (gloo): the weights stay identical on both ranks and equal a
single-process run over the same global batch; only rank 0 writes checkpoints."""
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cltr_learn.core import seed_everything
from cltr_learn.model import CLTRConfig, build_model
from cltr_learn.synthetic import SyntheticCrowds
from cltr_learn.runs import CHECKPOINT_NAME, run_training
from cltr_learn.training import TrainConfig

# tiny, no dropout, deterministic data: the only difference between the runs is how the batch is split
CFG = dict(backbone='resnet18', feature_layer='layer1', hidden_dim=32, nheads=2, enc_layers=1, dec_layers=2,
           dim_feedforward=64, num_queries=16, crop_size=32, dropout=0.0)
TC = dict(steps=3, batch_size=4, lr=1e-3, lr_backbone=1e-3, ckpt_every=0, eval_every=0, num_workers=0, seed=0)


def _train(out_dir: Path) -> dict:
    torch.set_num_threads(1)
    seed_everything(0)
    model = build_model(CLTRConfig(**CFG))
    data = SyntheticCrowds(8, 64, 64, (2, 12), crop_size=32, seed=0, cache=True, max_num=16)
    history = run_training(model, data, TrainConfig(**TC), out_dir, progress=False, device='cpu')
    return dict(state={k: v.clone() for k, v in model.state_dict().items()}, loss=history['loss'])


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        result = _train(Path(tmp) / f'rank{rank}')               # separate folders: shows who writes
        torch.save(result, Path(tmp) / f'result{rank}.pt')
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _comparable(name: str, v: torch.Tensor) -> torch.Tensor:
    """The part of a weight that a reordered float sum cannot move far. The key bias of a softmax attention gets a zero
    gradient in exact arithmetic (adding a constant to every key score leaves the softmax unchanged), so its gradient
    is pure rounding noise, which Adam's normalisation turns into lr-sized random steps: leave that third out."""
    if name.endswith('self_attn.in_proj_bias'):
        q, k, v3 = v.chunk(3)
        return torch.cat([q, v3])
    return v


def test_ddp_two_processes_match_single_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'result{r}.pt', weights_only=True) for r in (0, 1))
    single = _train(tmp_path / 'single')
    # each rank's loss is its half-batch sum over the global point count / 2: their mean is the global loss
    torch.testing.assert_close(torch.tensor(r0['loss']) / 2 + torch.tensor(r1['loss']) / 2, torch.tensor(single['loss']),
                               rtol=1e-5, atol=1e-5)
    for k, v in r0['state'].items():
        assert torch.equal(v, r1['state'][k]), f'{k} differs between the ranks'
        torch.testing.assert_close(_comparable(k, v), _comparable(k, single['state'][k]), rtol=1e-4, atol=2e-5,
                                   msg=lambda m: f'{k}: {m}')
    seed_everything(0)
    init = build_model(CLTRConfig(**CFG)).state_dict()
    moved = max((v - init[k]).abs().max().item() for k, v in single['state'].items() if v.is_floating_point())
    assert moved > 1e-3, 'training did not change the weights'
    assert (tmp_path / 'rank0' / CHECKPOINT_NAME).is_file()              # rank 0 writes the checkpoint
    assert not (tmp_path / 'rank1' / CHECKPOINT_NAME).exists()           # rank 1 does not
    assert (tmp_path / 'single' / CHECKPOINT_NAME).is_file()
