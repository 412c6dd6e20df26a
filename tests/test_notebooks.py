"""The notebooks are committed WITH their outputs (`make outputs` runs `tools/run_notebooks.py`): a reader browsing the
repository sees every figure and table. Fast checks on the committed files, nothing is executed:

- every notebook has outputs: at least one, a share of its demonstration cells, and a picture when it plots;
- no output would change on a re-run: no memory address, absolute path of this machine or timing (the checker of
  `tools/run_notebooks.py`);
- every notebook of the core path (00-14) writes its math in LaTeX (`$...$`, `$$...$$`) in its markdown.

The checks are shown to fail on a cleared copy and on planted unstable outputs.
"""
from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import run_notebooks as rn  # noqa: E402
from build_docs import directives, test_flags as skip_flags  # noqa: E402

NBS = ROOT / 'nbs'
NOTEBOOKS = sorted(NBS.glob('*.ipynb'))
CORE = [nb for nb in NOTEBOOKS if re.match(r'(0\d|1[0-4])_', nb.name)]
MIN_SHARE = 0.10          # of the demonstration cells (run, not exported, not hidden) must show an output
PLOTS = re.compile(r'\bplt\.|\bshow_\w+\(|\.imshow\(|\.plot\(|\bfig\b')
SKIP = skip_flags()


def load(path: Path) -> dict: return json.loads(path.read_text(encoding='utf-8'))


def _src(cell) -> str: return ''.join(cell.get('source', ''))


def demo_cells(nb: dict) -> list[dict]:
    "Code cells that run (not skipped by a test flag or `eval: false`) and teach (not exported, not hidden)."
    out = []
    for cell in nb['cells']:
        if cell['cell_type'] != 'code': continue
        if not _src(cell).strip() or not rn.is_executed(_src(cell), SKIP): continue
        if directives(_src(cell)).keys() & {'export', 'exporti', 'exports', 'hide', 'default_exp'}: continue
        out.append(cell)
    return out


def output_gaps(nb: dict) -> list[str]:
    "Why the notebook does not look executed: no output, too few demonstration cells with one, plots without a picture."
    cells = demo_cells(nb)
    shown = [c for c in cells if c.get('outputs')]
    gaps = []
    if not shown: return ['no code cell has an output: run `make outputs` (or tools/run_notebooks.py on it) and commit']
    if len(shown) < MIN_SHARE * len(cells):
        gaps.append(f'only {len(shown)} of {len(cells)} demonstration cells have outputs (at least {MIN_SHARE:.0%})')
    plots = [c for c in cells if PLOTS.search(_src(c))]
    images = [o for c in nb['cells'] for o in c.get('outputs', []) if any(k.startswith('image/') for k in o.get('data', {}))]
    if plots and not images: gaps.append(f'{len(plots)} cells plot but no output holds a picture')
    return gaps


def latex_in_markdown(nb: dict) -> int:
    "How many `$...$` / `$$...$$` formulas the markdown cells hold (code spans and fences are not math)."
    md = '\n'.join(_src(c) for c in nb['cells'] if c['cell_type'] == 'markdown')
    md = re.sub(r'```.*?```', '', md, flags=re.S)
    md = re.sub(r'`[^`\n]*`', '', md)
    display = re.findall(r'\$\$.+?\$\$', md, flags=re.S)
    md = re.sub(r'\$\$.+?\$\$', '', md, flags=re.S)
    inline = re.findall(r'(?<![\\$])\$(?=[^\s$])[^$\n]*?[^\s\\$]\$(?!\$)|(?<![\\$])\$[^\s$]\$', md)
    return len(display) + len(inline)


# -------------------------------------------------------------------------------------------------- the checks
@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_outputs(path):
    "Fails for a notebook committed without outputs, until `make outputs` is run on it and the result committed."
    gaps = output_gaps(load(path))
    assert not gaps, f'{path.name}: ' + '; '.join(gaps)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stable(path):
    problems = rn.notebook_problems(load(path), path.name)
    assert not problems, 'outputs that change on every run:\n' + '\n'.join(problems)


@pytest.mark.parametrize('path', CORE, ids=lambda p: p.stem)
def test_core_notebook_has_latex(path):
    assert latex_in_markdown(load(path)) > 0, f'{path.name}: no $...$ or $$...$$ math in its markdown'


def test_core_path_is_complete():
    assert [p.name[:2] for p in CORE] == [f'{i:02d}' for i in range(15)], [p.name for p in CORE]


# -------------------------------------------------------------------------------------------------- the checks can fail
EXECUTED = NBS / '00_core.ipynb'          # committed with outputs (a figure, stable)


def test_a_cleared_notebook_fails():
    nb = load(EXECUTED)
    assert not output_gaps(nb)
    cleared = copy.deepcopy(nb)
    for c in cleared['cells']:
        if c['cell_type'] == 'code': c['outputs'] = []
    assert output_gaps(cleared) and 'make outputs' in output_gaps(cleared)[0]
    # text outputs alone do not make up for the missing figures
    for c in demo_cells(cleared): c['outputs'] = [dict(name='stdout', output_type='stream', text=['ok\n'])]
    assert any('picture' in g for g in output_gaps(cleared))


@pytest.mark.parametrize('text,kind', [
    ('<torch.utils.data.dataloader.DataLoader object at 0x7f3a2c1d9e50>', 'memory address'),
    ('saved to /work/main/nbs/out.png', 'absolute path'),
    ("FileNotFoundError: '/tmp/tmpab12cd/model.pt'", 'absolute path'),
    (f'{Path.home()}/data/x.jpg', 'absolute path'),
    (f'{sys.prefix}/lib/python3/site-packages/torch/nn/modules/module.py:1: UserWarning', 'absolute path'),
    ('took 1.3 s', 'timing'), ('epoch 3: 0.52 s', 'timing'), ('elapsed: 12 ms', 'timing'),
    ('predict in 250ms per image', 'timing'), (' 45%|████▌     | 9/20 [00:03<00:04, 2.71it/s]', 'timing'),
])
def test_unstable_texts_are_found(text, kind):
    found = rn.text_problems(text)
    assert any(f.startswith(kind) for f in found), (text, found)


@pytest.mark.parametrize('text', [
    "{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 7: 7, 'hand': 7}", 'median 0.55 px, max 1.11 px', '8 heads, 6 layers, 500 queries',
    'https://github.com/example/tmp/x', 'torch.Size([2, 3, 128, 128])', '<Figure size 700x350 with 2 Axes>',
    'tensor([0.1234, 0.5000])', 'loss 0.25 after 3 steps', 'crops of 256 px in 4 model calls', 'data/sample_crowd.png',
    'strip height 10 | filled crops 11', 'sigma = 2.5, scale 1.15', 'a 30 s video at 25 fps',
])
def test_stable_texts_pass(text):
    assert rn.text_problems(text) == [], rn.text_problems(text)


def test_planted_outputs_are_reported_with_notebook_and_cell():
    nb = copy.deepcopy(load(EXECUTED))
    assert rn.notebook_problems(nb, EXECUTED.name) == []
    i = next(i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and 'seed_everything(3)' in _src(c))
    nb['cells'][i]['outputs'] = [dict(name='stdout', output_type='stream', text=['took 2.5 s\n']),
                                 dict(output_type='execute_result', execution_count=None, metadata={},
                                      data={'text/plain': ['<object at 0x7fa0b1c2d3e4>']})]
    problems = rn.notebook_problems(nb, EXECUTED.name)
    assert len(problems) == 2 and all(p.startswith(f'{EXECUTED.name}, cell {i} (') for p in problems), problems


def test_normalise_drops_widget_views_progress_and_counts():
    view = {'application/vnd.jupyter.widget-view+json': {'model_id': 'a3f9', 'version_major': 2, 'version_minor': 0}}
    outs = [dict(output_type='display_data', metadata={}, data=dict(view, **{'text/plain': ['IntSlider(value=3)']})),
            dict(output_type='display_data', metadata={}, data=dict(view)),
            dict(name='stderr', output_type='stream', text=['  0%|          | 0/3 [00:00<?, ?it/s]\r100%|##| 3/3\n']),
            dict(name='stdout', output_type='stream', text=['a\n']), dict(name='stdout', output_type='stream', text=['b\n']),
            dict(output_type='execute_result', execution_count=7, metadata={}, data={'text/plain': ['1']})]
    got = rn.normalise_outputs(outs)
    assert got[0]['data'] == {'text/plain': ['IntSlider(value=3)']}                 # text fallback kept
    assert [o['output_type'] for o in got] == ['display_data', 'stream', 'execute_result']   # bar and bare view gone
    assert got[1]['text'] == ['a\n', 'b\n'] and got[2]['execution_count'] is None
    assert rn.notebook_problems({'cells': [{'cell_type': 'code', 'source': 'w', 'outputs': outs[:1]}]})  # unnormalised


def test_latex_check_can_fail():
    nb = load(EXECUTED)
    assert latex_in_markdown(nb) > 0
    plain = copy.deepcopy(nb)
    for c in plain['cells']:
        if c['cell_type'] == 'markdown': c['source'] = re.sub(r'\$', '', _src(c))
    assert latex_in_markdown(plain) == 0
    assert latex_in_markdown({'cells': [{'cell_type': 'markdown', 'source': 'costs `$HOME` and $5 or $10'}]}) == 0
    assert latex_in_markdown({'cells': [{'cell_type': 'markdown', 'source': 'with $k = 3$ and\n$$d_i$$'}]}) == 2
