"""The GPU notebook's cells (`#| gpu`, skipped by a plain `nbdev_test`) run end to end on the CPU in its smoke mode
(`CLTR_SMOKE=1`: a 1 + 2-layer model, three steps, a few small pictures), on synthetic crowds and on the
ShanghaiTech fixture, and leave a complete run folder. This checks the notebook's code, not its numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'nbs' / '23_train_gpu.ipynb'


@pytest.mark.parametrize('data', ['synthetic', f"sha:{ROOT / 'data' / 'fixtures' / 'ShanghaiTech'}"])
def test_gpu_notebook_runs_in_smoke_mode(data, tmp_path):
    out = tmp_path / 'run'
    env = dict(os.environ, CLTR_SMOKE='1', CLTR_DATA=data, CLTR_OUT=str(out))
    nbdev_test = Path(sys.executable).with_name('nbdev_test')
    res = subprocess.run([str(nbdev_test), '--path', str(NOTEBOOK), '--flags', 'gpu'], cwd=ROOT / 'nbs', env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and 'Success.' in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ['checkpoint.pt', 'curves.png', 'metrics.json', 'model.safetensors']
    metrics = json.loads((out / 'metrics.json').read_text())
    assert {'mae', 'mse', 'nae', 'f1_4', 'f1_8'} <= set(metrics), sorted(metrics)
