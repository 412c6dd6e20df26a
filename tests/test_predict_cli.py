"`cltr-learn predict`: files written, exit codes, error messages, grayscale/RGBA inputs, safe checkpoint loading."
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cltr_learn.inference import predict_command
from cltr_learn.model import CLTRConfig, build_model, save_model

ROOT = Path(__file__).resolve().parents[1]
H, W = 70, 90          # not a multiple of the 64-pixel crop: 2 x 2 crops, the last ones padded


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory) -> Path:
    "A tiny random-weight model (resnet18, 1+1 layers, 10 queries, 64-pixel crops) saved with `save_model`."
    cfg = CLTRConfig(backbone='resnet18', backbone_weights=None, enc_layers=1, dec_layers=1,
                     dim_feedforward=64, num_queries=10, crop_size=64)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.safetensors'
    save_model(build_model(cfg), path)
    return path


@pytest.fixture(scope='module')
def images(tmp_path_factory) -> dict:
    "RGB, grayscale and RGBA PNGs, an unreadable file with an image suffix, and a missing path."
    d = tmp_path_factory.mktemp('images')
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    paths = dict(rgb=d / 'crowd.png', gray=d / 'gray.png', rgba=d / 'rgba.png', bad=d / 'broken.jpg', missing=d / 'missing.png')
    Image.fromarray(rgb).save(paths['rgb'])
    Image.fromarray(rgb[:, :, 0]).save(paths['gray'])                               # mode L
    Image.fromarray(np.concatenate([rgb, np.full((H, W, 1), 128, np.uint8)], 2)).save(paths['rgba'])
    paths['bad'].write_text('this is not an image')
    assert Image.open(paths['gray']).mode == 'L' and Image.open(paths['rgba']).mode == 'RGBA'
    return paths


def check_outputs(out: Path, stem: str, threshold=None) -> dict:
    "The PNG has the image's size, the JSON is consistent: count = number of points, points inside the image."
    png, js = out / f'{stem}.png', out / f'{stem}.json'
    assert png.is_file() and js.is_file()
    assert Image.open(png).size == (W, H)
    d = json.loads(js.read_text())
    assert (d['width'], d['height']) == (W, H)
    assert d['count'] == len(d['points']) == len(d['scores'])
    assert all(0 <= x <= W and 0 <= y <= H for x, y in d['points'])
    if threshold is not None: assert d['threshold'] == threshold and all(s >= threshold for s in d['scores'])
    return d


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'cltr_learn.cli', 'predict', *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


# ---------------------------------------------------------------- the library function
def test_rgb_gray_rgba(ckpt, images, tmp_path, capsys):
    out = tmp_path / 'out'
    status = predict_command([str(images[k]) for k in ('rgb', 'gray', 'rgba')], str(ckpt), 0.0, str(out))
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ['crowd.json', 'crowd.png', 'gray.json', 'gray.png', 'rgba.json', 'rgba.png']
    d = check_outputs(out, 'crowd', threshold=0.0)
    assert d['count'] > 0                                  # threshold 0 keeps every owned query
    for stem in ('gray', 'rgba'): check_outputs(out, stem, threshold=0.0)
    assert 'crowd.png' in capsys.readouterr().out


def test_threshold_default_and_override(ckpt, images, tmp_path):
    assert predict_command([str(images['rgb'])], str(ckpt), None, str(tmp_path / 'a')) == 0
    assert json.loads((tmp_path / 'a' / 'crowd.json').read_text())['threshold'] == 0.35   # from the model's cfg
    assert predict_command([str(images['rgb'])], str(ckpt), 1.0, str(tmp_path / 'b')) == 0
    assert json.loads((tmp_path / 'b' / 'crowd.json').read_text())['count'] == 0


def test_same_name_twice(ckpt, images, tmp_path):
    assert predict_command([str(images['rgb'])] * 2, str(ckpt), 0.5, str(tmp_path)) == 0
    assert {'crowd.json', 'crowd-2.json'} <= {p.name for p in tmp_path.iterdir()}


def test_unreadable_image_does_not_stop_the_others(ckpt, images, tmp_path, capsys):
    paths = [str(images['bad']), str(images['rgb']), str(images['missing'])]
    status = predict_command(paths, str(ckpt), 0.5, str(tmp_path))
    err = capsys.readouterr().err
    assert status == 1
    assert 'broken.jpg' in err and 'cannot be read as an image' in err
    assert 'missing.png' in err and 'does not exist' in err
    check_outputs(tmp_path, 'crowd')
    assert not (tmp_path / 'broken.json').exists() and not (tmp_path / 'missing.json').exists()


def test_bad_checkpoint(images, tmp_path, capsys):
    junk = tmp_path / 'junk.safetensors'
    junk.write_bytes(b'\x00garbage' * 10)
    for ck in (junk, tmp_path / 'nope.pt'):
        status = predict_command([str(images['rgb'])], str(ck), None, str(tmp_path / 'out'))
        assert status == 2
        assert ck.name in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


class _Payload:
    "Unpickling this runs `open(marker, 'w')`: a stand-in for arbitrary code in a malicious checkpoint."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (self.marker, 'w'))


def test_pickled_code_is_not_executed(images, tmp_path, capsys):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pt'
    torch.save({'model': {'w': torch.zeros(1)}, 'config': {}, 'payload': _Payload(str(marker))}, evil)
    status = predict_command([str(images['rgb'])], str(evil), None, str(tmp_path / 'out'))
    assert status == 2 and 'evil.pt' in capsys.readouterr().err
    assert not marker.exists()


# ---------------------------------------------------------------- the console command
def test_cli_predict(ckpt, images, tmp_path):
    out = tmp_path / 'out'
    r = cli(images['rgb'], images['gray'], images['rgba'], '--checkpoint', ckpt, '--threshold', '0.2', '--out', out)
    assert r.returncode == 0, r.stderr
    for stem in ('crowd', 'gray', 'rgba'): check_outputs(out, stem, threshold=0.2)


def test_cli_bad_image(ckpt, images, tmp_path):
    r = cli(images['bad'], images['rgb'], '--checkpoint', ckpt, '--out', tmp_path)
    assert r.returncode == 1
    assert 'broken.jpg' in r.stderr
    check_outputs(tmp_path, 'crowd')


def test_cli_bad_checkpoint(images, tmp_path):
    junk = tmp_path / 'junk.safetensors'
    junk.write_text('not a checkpoint')
    r = cli(images['rgb'], '--checkpoint', junk, '--out', tmp_path / 'out')
    assert r.returncode != 0
    assert 'junk.safetensors' in r.stderr
    assert 'Traceback' not in r.stderr


# ---------------------------------------------------------------- bad arguments are named before any work
def test_bad_threshold_is_one_argument_error(ckpt, images, tmp_path):
    r = cli(images['rgb'], images['gray'], '--checkpoint', ckpt, '--threshold', '5', '--out', tmp_path / 'out')
    assert r.returncode == 2, r.stderr
    assert r.stderr.count('expected a score in [0, 1]') == 1 and 'argument --threshold' in r.stderr   # once, not per image
    assert not (tmp_path / 'out' / 'crowd.png').exists()


def test_unwritable_output_folder_fails_before_inference(ckpt, images, tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    r = cli(images['rgb'], '--checkpoint', ckpt, '--out', tmp_path / 'a_file' / 'out')
    assert r.returncode == 2, r.stderr
    assert 'cannot write to output folder' in r.stderr and 'Traceback' not in r.stderr
    assert 'heads ->' not in r.stdout                       # no image was processed


def test_folder_given_as_an_image_is_called_a_folder(ckpt, images, tmp_path):
    r = cli(images['rgb'].parent, '--checkpoint', ckpt, '--out', tmp_path / 'out')
    assert r.returncode == 1, r.stderr
    assert 'is a folder; expected an image file' in r.stderr and 'does not exist' not in r.stderr


def test_text_file_as_checkpoint_is_not_a_checkpoint_and_gets_no_unsafe_advice(images, tmp_path):
    (tmp_path / 'checkpoint.pt').write_text('hello')
    r = cli(images['rgb'], '--checkpoint', tmp_path / 'checkpoint.pt', '--out', tmp_path / 'out')
    assert r.returncode == 2, r.stderr
    assert 'checkpoint.pt' in r.stderr and 'not a file of tensors' in r.stderr and 'weights_only=False' not in r.stderr
