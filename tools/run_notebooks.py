#!/usr/bin/env python
"""Execute notebooks top to bottom and save them WITH their outputs, in a form that a re-run does not change.

    python tools/run_notebooks.py [NOTEBOOK ...]          # default: every nbs/*.ipynb (`make outputs`)
    python tools/run_notebooks.py --check [NOTEBOOK ...]  # only check the committed outputs, run nothing

Each notebook runs in a fresh Python process, without a Jupyter kernel, through execnb's `CaptureShell` (what
`nbdev_test` uses), with the notebook's folder as working directory. Cells that `nbdev_test` skips (a test flag of
settings.ini such as `#| slow` or `#| gpu`, or `#| eval: false`) are not run and keep no output.

Outputs are then made stable: no execution counts, no widget views (their model ids are random: the plain-text
fallback is kept), no progress bars (tqdm is disabled through `TQDM_DISABLE=1`, and carriage-return progress lines
are dropped), then `nbdev_clean` formats the file as the sync check expects. Finally every output is checked: a
memory address (`0x7f3a...`), an absolute path of this machine (`/work/...`, `/tmp/...`, the home or the Python
environment) or a timing (`took 1.3 s`, `12.5 it/s`) makes the run fail, naming the notebook and the cell, because
it would change the committed file on every run. `tests/test_notebooks.py` runs the same check on the committed
notebooks.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_docs import directives, skipped, test_flags  # noqa: E402

WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
# What a stable run sets: no progress bars, the same hash seed, a fixed number of CPU threads (so reductions add in
# the same order whatever the machine), matplotlib without a display.
STABLE_ENV = {'TQDM_DISABLE': '1', 'PYTHONHASHSEED': '0', 'OMP_NUM_THREADS': '2', 'MKL_NUM_THREADS': '2',
              'MPLBACKEND': 'Agg', 'PYTHONWARNINGS': 'ignore::DeprecationWarning'}

# ---------------------------------------------------------------------------------------------- the stability check
MEMORY_ADDRESS = re.compile(r'0x[0-9a-fA-F]{6,}')
UNIT = r'(?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hours?)'
TIMING = [
    # a time after a word that announces one: "took 3 s", "elapsed: 0.2 sec", "time 12 ms", "in 4.1 s"
    re.compile(r'(?i)\b(?:took|elapsed|time[sd]?|timing|duration|wall|runtime|latency|speed|in|per)\b[^\n\d]{0,24}'
               rf'\d+(?:\.\d+)?\s?{UNIT}(?![\w/])'),
    # a decimal number of seconds or milliseconds anywhere: "0.53 s", "12.0ms", "1.5 sec"
    re.compile(rf'(?<![\w.])\d+\.\d+\s?(?:ns|us|µs|ms|s|sec|secs|seconds)(?![\w/])'),
    re.compile(r'\d+(?:\.\d+)?\s?(?:it/s|s/it|img/s|images/s|samples/s)\b'),   # throughput
    re.compile(r'\d+%\|'),                                                     # a tqdm bar
    re.compile(r'\b\d\d:\d\d(?::\d\d)?<\d\d:\d\d'),                            # tqdm's elapsed<remaining
]


def machine_paths() -> list[str]:
    "Absolute folders of this machine that must not appear in an output."
    home = str(Path.home())
    found = {str(ROOT), str(ROOT.parent), sys.prefix, sys.base_prefix, home, tempfile.gettempdir()}
    found = {p.rstrip('/') + '/' for p in found if p and p not in ('/', '')}
    return sorted(found | {'/work/', '/tmp/', '/root/', '/home/', '/var/folders/', '/private/var/', 'C:\\Users\\'},
                  key=len, reverse=True)


def _path_pattern(paths: list[str]) -> re.Pattern:
    # an absolute path starts the text or follows a space, quote, bracket or '=' (not a URL: https://x/tmp/ is fine)
    alts = '|'.join(re.escape(p) for p in paths)
    return re.compile(rf'(?:^|(?<=[\s\'"(\[=<:,]))(?<!//)(?:{alts})', re.M)


def text_problems(text: str, paths: list[str] | None = None) -> list[str]:
    "What makes `text` unstable across runs: memory addresses, absolute paths of this machine, timings."
    found = [f'memory address {m.group(0)!r}' for m in MEMORY_ADDRESS.finditer(text)]
    found += [f'absolute path {text[m.start():m.start() + 60].split()[0]!r}'
              for m in _path_pattern(paths if paths is not None else machine_paths()).finditer(text)]
    spans = []                                   # one report per timing, however many patterns see it
    for pattern in TIMING:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in spans): continue
            spans.append(m.span()); found.append(f'timing {m.group(0)!r}')
    return found


def _text(value) -> str: return ''.join(value) if isinstance(value, list) else str(value)


def output_texts(output: dict) -> list[str]:
    "The texts of one output that a reader sees (images are not text and are not searched)."
    kind = output.get('output_type')
    if kind == 'stream': return [_text(output.get('text', ''))]
    if kind == 'error': return [_text(output.get('traceback', [])), _text(output.get('evalue', ''))]
    data = output.get('data', {})
    return [_text(v) for k, v in data.items() if k.startswith('text/') or k == 'image/svg+xml' or k.endswith('json')]


def cell_label(nb_name: str, index: int, cell: dict) -> str:
    "`nbs/01_synthetic.ipynb, cell 12 (first line of its source)`."
    first = next((l for l in _text(cell.get('source', '')).splitlines() if l.strip() and not l.startswith('#|')), '')
    return f'{nb_name}, cell {index} ({first[:60]})'


def notebook_problems(nb: dict, name: str = 'notebook', paths: list[str] | None = None) -> list[str]:
    "Every unstable output of the notebook `nb` (a dict as in the .ipynb file), one line each naming the cell."
    paths = machine_paths() if paths is None else paths
    found = []
    for i, cell in enumerate(nb.get('cells', [])):
        for output in cell.get('outputs', []):
            if output.get('output_type') == 'error':
                found.append(f'{cell_label(name, i, cell)}: an error output ({output.get("ename")})')
            if WIDGET_VIEW in output.get('data', {}):
                found.append(f'{cell_label(name, i, cell)}: a widget view (random model id)')
            for text in output_texts(output):
                found += [f'{cell_label(name, i, cell)}: {p}' for p in text_problems(text, paths)]
    return found


# ---------------------------------------------------------------------------------------------- normalising outputs
def _collapse_progress(text: str) -> str:
    "Keep what a terminal would show of lines rewritten with carriage returns, then drop tqdm-looking lines."
    lines = [line.rsplit('\r', 1)[-1] for line in text.split('\n')]
    return '\n'.join(l for l in lines if not TIMING[3].search(l) and not TIMING[4].search(l))


MAX_PNG_BYTES = 120_000      # a larger PNG (a photo-like picture) is stored as JPEG when that is at least half as big


def shrink_image(data: dict, max_png_bytes: int = MAX_PNG_BYTES, quality: int = 85) -> dict:
    "Replace a large `image/png` (noisy crowd pictures compress badly) by an `image/jpeg` of it on white."
    png = data.get('image/png')
    if png is None: return data
    import base64, io
    from PIL import Image
    raw = base64.b64decode(_text(png))
    if len(raw) <= max_png_bytes: return data
    im = Image.open(io.BytesIO(raw))
    if im.mode in ('RGBA', 'LA', 'P'):
        im = im.convert('RGBA')
        flat = Image.new('RGB', im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel('A'))
        im = flat
    buf = io.BytesIO()
    im.convert('RGB').save(buf, 'JPEG', quality=quality, optimize=True)
    if 2 * len(buf.getvalue()) > len(raw): return data
    out = {k: v for k, v in data.items() if k != 'image/png'}
    out['image/jpeg'] = base64.b64encode(buf.getvalue()).decode()
    return out


def normalise_outputs(outputs: list[dict]) -> list[dict]:
    "Merge consecutive streams, drop progress bars, widget views and execution counts; large PNGs become JPEGs."
    out = []
    for o in outputs:
        o = dict(o)
        o.pop('transient', None)
        if o.get('output_type') == 'stream':
            text = _collapse_progress(_text(o.get('text', '')))
            if out and out[-1].get('output_type') == 'stream' and out[-1]['name'] == o['name']:
                text = _text(out.pop()['text']) + text
            if text.strip(): out.append(dict(name=o['name'], output_type='stream', text=text.splitlines(True)))
            continue
        if 'data' in o:
            data = {k: v for k, v in o['data'].items() if k != WIDGET_VIEW}
            if not data: continue                      # a widget view with no text fallback
            o['data'] = shrink_image(data)
            o['metadata'] = {k: v for k, v in (o.get('metadata') or {}).items() if k in o['data']}
        if o.get('output_type') == 'execute_result': o['execution_count'] = None
        out.append(o)
    return out


def is_executed(source: str, skip: set[str]) -> bool:
    "Whether a code cell runs when a notebook is executed here (and by nbdev_test): not flagged off, not the export call."
    return 'nbdev_export(' not in source and not skipped(directives(source), skip)


def normalise(nb: dict, skip: set[str]) -> dict:
    "Outputs of skipped cells removed, the others normalised; no execution counts; no widget state."
    for cell in nb['cells']:
        if cell.get('cell_type') != 'code': continue
        cell['execution_count'] = None
        src = _text(cell.get('source', ''))
        cell['outputs'] = normalise_outputs(cell.get('outputs', [])) if is_executed(src, skip) else []
    nb.get('metadata', {}).pop('widgets', None)
    return nb


# ---------------------------------------------------------------------------------------------- executing
def execute_in_process(nb_path: Path, timeout: int | None = None) -> int:
    "Run `nb_path` here (in a process started with `STABLE_ENV`) and write it back with its outputs."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory

    skip = test_flags()
    nb = read_nb(nb_path)
    shell = CaptureShell(nb_path, mpl_format='png', timeout=timeout)   # png: half the bytes of retina figures

    def no_eval(cell) -> bool:
        "True for the cells not to run; every code cell loses its old outputs (a quiet cell keeps none)."
        if cell.cell_type != 'code': return True
        cell.outputs = []
        return not is_executed(cell.source, skip)

    with working_directory(nb_path.parent):
        try:
            shell.run_all(nb, exc_stop=True, preproc=no_eval)
        except BaseException:
            index = getattr(shell, '_cell_idx', None)     # 1-based
            print(shell.prettytb(fname=nb_path.name), file=sys.stderr)
            where = cell_label(nb_path.name, index - 1, nb.cells[index - 1]) if index else nb_path.name
            print(f'run_notebooks: failed at {where}', file=sys.stderr)
            return 1
    from execnb.nbio import nb2dict
    nb = normalise(nb2dict(nb), skip)
    write_nb(nb, nb_path)
    return 0


def nbdev_clean(nb_path: Path):
    "Format the file as `nbdev_clean` does (metadata, ids), so that the sync check finds nothing to change."
    clean = Path(sys.executable).parent / 'nbdev_clean'
    subprocess.run([str(clean), '--fname', str(nb_path)], cwd=ROOT, check=True, capture_output=True, text=True)


def run_notebook(nb_path: Path, timeout: int | None = None, log=print) -> list[str]:
    "Execute `nb_path` in a fresh process, normalise and clean it; return its problems (empty when all is well)."
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, '--in-process', str(nb_path)] + (['--timeout', str(timeout)] if timeout else [])
    env = dict(os.environ)
    for key, value in STABLE_ENV.items():
        if key.endswith('_NUM_THREADS'): env.setdefault(key, value)     # a caller may choose the thread count
        else: env[key] = value
    proc = subprocess.run(cmd, cwd=nb_path.parent, env=env, capture_output=True, text=True)
    if proc.returncode:
        return [f'{nb_path.name}: execution failed\n{(proc.stdout + proc.stderr)[-4000:]}']
    nbdev_clean(nb_path)
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    problems = notebook_problems(nb, nb_path.name)
    log(f'{nb_path.name:28s} {"UNSTABLE" if problems else "ok"} ({time.perf_counter() - t0:.0f} s)')
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='*', type=Path, help='notebooks to run (default: every nbs/*.ipynb)')
    p.add_argument('--check', action='store_true', help='run nothing: only check the outputs already in the files')
    p.add_argument('--timeout', type=int, default=None, help='seconds allowed per cell (default: no limit)')
    p.add_argument('--in-process', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    notebooks = [nb.resolve() for nb in args.notebooks] or sorted(NBS.glob('*.ipynb'))
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing: p.error(f'notebook not found: {", ".join(missing)}')
    if args.in_process: return execute_in_process(notebooks[0], args.timeout)
    problems = []
    for nb_path in notebooks:
        if args.check: problems += notebook_problems(json.loads(nb_path.read_text(encoding='utf-8')), nb_path.name)
        else: problems += run_notebook(nb_path, args.timeout)
    for line in problems: print(f'UNSTABLE OUTPUT {line}' if 'execution failed' not in line else f'FAILED {line}',
                                file=sys.stderr)
    if problems:
        print(f'run_notebooks: {len(problems)} problem(s); fix the cells named above (print no timings, absolute '
              'paths or object reprs) and run again', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
