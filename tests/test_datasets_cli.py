"""`cltr-learn data stats <format>:<root>` on the fixture folders of data/fixtures, called as a function and
through the command line. The expected numbers are read from the fixture files with plain SciPy, json, csv and
PIL, independently of `cltr_learn.datasets`."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from cltr_learn.datasets import data_stats_command

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / 'data' / 'fixtures'
IMAGE_SUFFIXES = ('.jpg', '.png')


def _jhu_rows(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _csv_rows(path: Path) -> int:
    rows = [r for r in csv.reader(path.open()) if r]
    return len(rows) - (rows and not rows[0][0].replace('.', '').isdigit())


def expected(fmt: str, split: str):
    "(image paths, head counts of the annotated images) of one fixture split, read without cltr_learn."
    if fmt in ('sha', 'shb'):
        d = FIX / 'ShanghaiTech' / f"part_{'A' if fmt == 'sha' else 'B'}" / f'{split}_data'
        images = sorted((d / 'images').glob('*.jpg'))
        counts = [len(scipy.io.loadmat(d / 'ground-truth' / f'GT_{p.stem}.mat')['image_info'][0, 0][0, 0]['location'])
                  for p in images]
    elif fmt in ('qnrf', 'ucf50'):
        d = FIX / 'UCF-QNRF_ECCV18' / split.capitalize() if fmt == 'qnrf' else FIX / 'UCF_CC_50'
        images = sorted(d.glob('*.jpg'))
        counts = [len(scipy.io.loadmat(p.with_name(f'{p.stem}_ann.mat'))['annPoints']) for p in images]
    elif fmt == 'jhu':
        d = FIX / 'jhu_crowd_v2.0' / split
        images = sorted((d / 'images').glob('*.jpg'))
        counts = [_jhu_rows(d / 'gt' / f'{p.stem}.txt') for p in images]
    elif fmt == 'nwpu':
        d = FIX / 'NWPU-Crowd'
        ids = [line.split()[0] for line in (d / f'{split}.txt').read_text().splitlines() if line.strip()]
        images = [d / 'images' / f'{i}.jpg' for i in ids]
        counts = [len(json.loads((d / 'jsons' / f'{i}.json').read_text())['points'])
                  for i in ids if (d / 'jsons' / f'{i}.json').exists()]
    else:
        d = FIX / 'custom' / split
        images = sorted(p for p in d.iterdir() if p.suffix in IMAGE_SUFFIXES)
        counts = [_csv_rows(p.with_suffix('.csv')) if p.with_suffix('.csv').exists()
                  else len(json.loads(p.with_suffix('.json').read_text())['points']) for p in images]
    return images, counts


ROOTS = {'sha': 'ShanghaiTech', 'shb': 'ShanghaiTech', 'qnrf': 'UCF-QNRF_ECCV18', 'ucf50': 'UCF_CC_50',
         'jhu': 'jhu_crowd_v2.0', 'nwpu': 'NWPU-Crowd', 'custom': 'custom'}
CASES = [('sha', 'train'), ('sha', 'test'), ('shb', 'train'), ('qnrf', 'train'), ('qnrf', 'test'), ('ucf50', 'all'),
         ('jhu', 'train'), ('jhu', 'val'), ('jhu', 'test'), ('nwpu', 'train'), ('nwpu', 'val'), ('nwpu', 'test'),
         ('custom', 'train'), ('custom', 'val')]


def spec(fmt: str) -> str:
    return f'{fmt}:{FIX / ROOTS[fmt]}'


def check_output(out: str, fmt: str, split: str):
    images, counts = expected(fmt, split)
    sizes = [Image.open(p).size for p in images]
    assert f"split '{split}'" in out
    assert f'images           {len(images)} ({len(counts)} annotated)' in out
    w, h = [s[0] for s in sizes], [s[1] for s in sizes]
    assert f'width            {min(w)} .. {max(w)} px' in out
    assert f'height           {min(h)} .. {max(h)} px' in out
    if counts:
        assert f'heads in total   {sum(counts)}' in out
        assert f'min {min(counts)}, max {max(counts)}' in out
        assert f'mean {np.mean(counts):.1f}, median {np.median(counts):.1f}' in out
    else:
        assert 'heads in total' not in out


@pytest.mark.filterwarnings('ignore:.*lie slightly outside')      # checked in its own test below
@pytest.mark.parametrize('fmt,split', CASES)
def test_stats_function(capsys, fmt, split):
    assert data_stats_command(spec(fmt), split) == 0
    check_output(capsys.readouterr().out, fmt, split)


def test_stats_every_split(capsys):
    assert data_stats_command(spec('jhu')) == 0
    out = capsys.readouterr().out
    for split in ('train', 'val', 'test'):
        part = out.split(f"split '{split}'")[1].split('JHU-Crowd++ (jhu)')[0]      # this split's lines only
        check_output(f"split '{split}'" + part, 'jhu', split)


def test_stats_bad_input(capsys):
    assert data_stats_command('ShanghaiTech') == 1
    assert "expected '<format>:<root>'" in capsys.readouterr().err
    assert data_stats_command(f'sha:{FIX}/no_such_folder') == 1
    assert 'no_such_folder' in capsys.readouterr().err
    assert data_stats_command(spec('sha'), 'val') == 1
    assert "expected one of ['train', 'test']" in capsys.readouterr().err


def test_stats_warns_about_clipped_points(capsys):
    with pytest.warns(UserWarning, match='3 of 80 points lie slightly outside'):
        assert data_stats_command(spec('qnrf'), 'train') == 0


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'cltr_learn.cli', 'data', 'stats', *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize('fmt,split', [('sha', 'train'), ('nwpu', 'test'), ('custom', 'train')])
def test_stats_command_line(fmt, split):
    r = _cli(spec(fmt), '--split', split)
    assert r.returncode == 0, r.stderr
    check_output(r.stdout, fmt, split)


def test_stats_command_line_bad_spec():
    r = _cli('nowhere:/no/such/folder')
    assert r.returncode == 1
    assert "expected '<format>:<root>'" in r.stderr
