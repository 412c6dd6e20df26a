"`cltr-learn predict` and `export`: files written, exit codes, error messages, grayscale/RGBA inputs, folders, safe checkpoint loading, ONNX."
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cltr_learn.deploy import predict_command
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


def cli(*args, command='predict') -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'cltr_learn.cli', command, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline='') as f: return list(csv.DictReader(f))


# ---------------------------------------------------------------- the library function
def test_rgb_gray_rgba(ckpt, images, tmp_path, capsys):
    out = tmp_path / 'out'
    status = predict_command([str(images[k]) for k in ('rgb', 'gray', 'rgba')], str(ckpt), 0.0, str(out))
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ['counts.csv', 'crowd.json', 'crowd.png', 'gray.json', 'gray.png',
                                                   'points.csv', 'rgba.json', 'rgba.png']
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
    "Two files called crowd.png in different folders get two sets of outputs; one file named twice is done once."
    other = tmp_path / 'elsewhere' / 'crowd.png'
    other.parent.mkdir()
    other.write_bytes(images['rgb'].read_bytes())
    out = tmp_path / 'out'
    assert predict_command([str(images['rgb']), str(other), str(images['rgb'])], str(ckpt), 0.5, str(out)) == 0
    assert sorted(p.name for p in out.glob('*.json')) == ['crowd-2.json', 'crowd.json']
    assert len(read_csv(out / 'counts.csv')) == 2


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


def test_a_folder_is_searched_and_its_bad_files_are_named(tmp_path):
    "A folder with two good images (one in a subfolder), a truncated JPEG, a text file and a hidden file."
    d = tmp_path / 'photos'
    (d / 'street').mkdir(parents=True)
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / 'a.png')
    Image.fromarray(rgb).save(d / 'street' / 'b.jpg')
    Image.fromarray(rgb).save(d / 'cut.jpg')
    (d / 'cut.jpg').write_bytes((d / 'cut.jpg').read_bytes()[:300])        # a download that stopped early
    (d / 'notes.txt').write_text('taken on Tuesday')
    (d / '.thumbs.png').write_bytes(b'hidden files are skipped')
    out = tmp_path / 'out'
    r = cli(d, '--out', out, '--quiet')                                     # no --checkpoint: the shipped model
    assert r.returncode == 1, r.stderr
    assert 'cut.jpg' in r.stderr and 'notes.txt' in r.stderr and '.thumbs' not in r.stderr
    assert 'Traceback' not in r.stderr
    assert sorted(p.name for p in out.glob('*.json')) == ['a.json', 'b.json']
    for stem in ('a', 'b'): check_outputs(out, stem)
    counts = read_csv(out / 'counts.csv')
    assert [Path(row['image']).name for row in counts] == ['a.png', 'b.jpg']
    per_image = {Path(row['image']).name: int(row['count']) for row in counts}
    points = read_csv(out / 'points.csv')
    assert (out / 'points.csv').read_text().splitlines()[0] == 'image,frame,x,y,score'
    for name, n in per_image.items():
        assert sum(Path(row['image']).name == name for row in points) == n
        assert json.loads((out / f'{Path(name).stem}.json').read_text())['count'] == n
    assert '2 input(s) processed, 2 failed' in r.stdout


def test_pattern_and_missing_file(ckpt, images, tmp_path):
    r = cli(str(images['rgb'].parent / '*.png'), tmp_path / 'nowhere.png', '--checkpoint', ckpt, '--out', tmp_path / 'out')
    assert r.returncode == 1
    assert 'nowhere.png' in r.stderr and 'does not exist' in r.stderr
    assert {p.stem for p in (tmp_path / 'out').glob('*.json')} == {'crowd', 'gray', 'rgba'}


def test_nwpu_files(ckpt, tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / '3610.png')
    r = cli(tmp_path / '3610.png', '--checkpoint', ckpt, '--threshold', '0', '--format', 'nwpu', '--out', tmp_path / 'out')
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / 'out' / '3610.json').read_text())
    loc = (tmp_path / 'out' / 'nwpu_localization.txt').read_text().split()
    assert loc[:2] == ['3610', str(d['count'])] and len(loc) == 2 + 2 * d['count']
    assert [round(float(v)) for v in loc[2:4]] == [round(v) for v in d['points'][0]]
    assert (tmp_path / 'out' / 'nwpu_counting.txt').read_text().split() == ['3610', f"{d['count']:.4f}"]


# ---------------------------------------------------------------- export
def test_export_onnx_matches_pytorch(ckpt, tmp_path):
    import onnxruntime as ort
    from cltr_learn.model import load_model
    onnx_file = tmp_path / 'tiny.onnx'
    r = cli('--checkpoint', ckpt, '--out', onnx_file, command='export')
    assert r.returncode == 0, r.stderr
    model = load_model(ckpt)
    crops = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))      # a batch size not used at export
    mask = torch.zeros(5, 64, 64, dtype=torch.bool); mask[2, 40:] = True
    with torch.inference_mode(): ref = model(crops, mask)
    sess = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    logits, points = sess.run(None, {'images': crops.numpy(), 'pad_mask': mask.numpy()})
    assert logits.shape == (5, 10, 2) and points.shape == tuple(ref['pred_points'].shape) and points.shape[:2] == (5, 10)
    np.testing.assert_allclose(logits, ref['pred_logits'].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(points, ref['pred_points'].numpy(), atol=1e-4, rtol=0)


def test_export_bad_format(ckpt, tmp_path):
    r = cli('--checkpoint', ckpt, '--format', 'tflite', '--out', tmp_path / 'm.tflite', command='export')
    assert r.returncode == 2 and 'tflite' in r.stderr and "'onnx'" in r.stderr


def test_text_file_as_checkpoint_is_not_a_checkpoint_and_gets_no_unsafe_advice(images, tmp_path):
    (tmp_path / 'checkpoint.pt').write_text('hello')
    r = cli(images['rgb'], '--checkpoint', tmp_path / 'checkpoint.pt', '--out', tmp_path / 'out')
    assert r.returncode == 2, r.stderr
    assert 'checkpoint.pt' in r.stderr and 'not a file of tensors' in r.stderr and 'weights_only=False' not in r.stderr
