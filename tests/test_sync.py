"""The notebooks are the source: exporting and cleaning them must not change any committed file."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _snapshot(root: Path) -> dict:
    "Path → bytes of every notebook and package file under `root`."
    files = list((root / 'nbs').rglob('*.ipynb')) + list((root / 'cltr_learn').rglob('*.py'))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files if '.ipynb_checkpoints' not in p.parts}


def _copy_project(dst: Path) -> Path:
    for name in ('settings.ini', 'pyproject.toml', 'setup.py'):
        if (ROOT / name).exists(): shutil.copy(ROOT / name, dst / name)
    ignore = shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints')
    shutil.copytree(ROOT / 'nbs', dst / 'nbs', ignore=ignore)
    shutil.copytree(ROOT / 'cltr_learn', dst / 'cltr_learn', ignore=ignore)
    return dst


def _changed_by(tool: str, root: Path) -> list[str]:
    "Run an nbdev tool in `root`; list the files it added, removed or changed."
    before = _snapshot(root)
    subprocess.run([str(BIN / tool)], cwd=root, check=True, capture_output=True, text=True)
    after = _snapshot(root)
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.mark.parametrize('tool', ['nbdev_export', 'nbdev_clean'])
def test_tool_changes_nothing(tool, tmp_path):
    changed = _changed_by(tool, _copy_project(tmp_path))
    assert not changed, f"{tool} changes {changed}: run `make export clean-nbs` and commit the result"


def test_check_detects_an_edited_notebook(tmp_path):
    "The check above can fail: an exported cell edited in a notebook changes the package."
    root = _copy_project(tmp_path)
    nb = root / 'nbs' / '00_core.ipynb'
    text = nb.read_text()
    assert 'def seed_everything' in text
    nb.write_text(text.replace('def seed_everything', 'def seed_everything_renamed'))
    assert 'cltr_learn/core.py' in _changed_by('nbdev_export', root)
