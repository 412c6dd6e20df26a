#!/usr/bin/env python
"""Build the HTML site from the executed notebooks, with a local MathJax and an index page made from README.md.

Each notebook is executed and converted to an HTML page; the index is README.md rendered, its curriculum table
linking to the pages.

    python tools/build_docs.py [--out _site] [--jobs 2] [NOTEBOOK ...]
    python tools/build_docs.py --from-outputs [NOTEBOOK ...]   # fast: the outputs committed in the notebooks

The notebooks are committed with their outputs (`make outputs`), so `--from-outputs` converts them as they are, in
seconds, without running a cell; a notebook committed without outputs then gets a page without outputs.

Cells flagged with a test flag of settings.ini (`#| slow`, `#| gpu`) or `#| eval: false` are shown but not run, as under
`nbdev_test`. MathJax comes from Debian's `libjs-mathjax` (/usr/share/javascript/mathjax) and is copied into
the site, so pages render math without a network.
"""
from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
MATHJAX_SRC = Path('/usr/share/javascript/mathjax')
MATHJAX_URL = 'mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe'
# The parts of MathJax 2 the TeX → CommonHTML configuration loads.
MATHJAX_PARTS = ['MathJax.js', 'config/TeX-AMS_CHTML-full.js', 'config/Safe.js', 'extensions', 'jax/input/TeX',
                 'jax/output/CommonHTML', 'jax/element', 'fonts/HTML-CSS/TeX/woff']
TEMPLATE = Path(__file__).with_name('docs_page.html.j2')   # nbconvert's lab page, no network scripts
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*(.*)$')


def test_flags() -> set[str]:
    "The flags (`slow gpu`) whose cells `nbdev_test` skips, from settings.ini."
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    return set(cfg.get('DEFAULT', 'tst_flags', fallback='').split())


def directives(source: str) -> dict[str, str]:
    "The `#| ...` directives at the top of a code cell: `{'export': '', 'slow': '', 'eval': 'false', ...}`."
    out = {}
    for line in source.splitlines():
        m = DIRECTIVE.match(line)
        if m:
            text = m.group(1).strip()
            if ':' in text:                                      # quarto style: `#| eval: false`
                key, value = text.split(':', 1)
                out[key.strip()] = value.strip().lower()
            else:                                                # nbdev style: `#| export`, `#| slow gpu`
                out |= {word: '' for word in text.split()}
        elif line.strip(): break
    return out


def skipped(flags: dict, skip: set[str]) -> list[str]:
    "Why a cell is not executed: the test flags it carries, or `eval: false` (as `nbdev_test`)."
    return sorted(set(flags) & skip) + (['eval: false'] if flags.get('eval') == 'false' else [])


def copy_mathjax(dst: Path, src: Path = MATHJAX_SRC):
    "Copy the needed part of a MathJax 2 installation to `dst` (idempotent)."
    if not (src / 'MathJax.js').exists():
        raise FileNotFoundError(f"MathJax not found at {src}: install Debian's libjs-mathjax (apt-get install -y "
                                "libjs-mathjax) or pass --mathjax-dir")
    for part in MATHJAX_PARTS:
        s, d = src / part, dst / part
        if not s.exists(): raise FileNotFoundError(f'{s} is missing from the MathJax installation at {src}')
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir(): shutil.copytree(s, d, dirs_exist_ok=True)
        else: shutil.copy(s, d)


def page_name(nb: Path) -> str: return nb.stem + '.html'


def link_pages(text: str, built: set[str]) -> str:
    "Point links to notebooks (`nbs/03_pos_enc.ipynb`, `03_pos_enc.ipynb`) at their HTML pages."
    def sub(m):
        stem = m.group(2)
        return f'{m.group(1)}{stem}.html' if stem in built else m.group(0)
    return re.sub(r'((?:href=")|(?:\]\())(?:\.\./)?(?:nbs/)?([\w.-]+)\.ipynb', sub, text)


def execute(nb_path: Path, timeout: int, skip: set[str]):
    "Run `nb_path` top to bottom in a kernel started in its folder, skipping cells flagged with `skip`."
    import nbformat
    from nbclient import NotebookClient

    class Client(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if cell.cell_type == 'code' and skipped(directives(cell.source), skip): return cell
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    nb = nbformat.read(nb_path, as_version=4)
    Client(nb, timeout=timeout, kernel_name='python3', store_widget_state=False,
           resources={'metadata': {'path': str(nb_path.parent)}}).execute()
    return nb


def prepare(nb, built: set[str], skip: set[str]):
    "Drop `#| hide` cells, directive lines and cells left empty; note cells not run; link the notebook pages."
    cells = []
    for cell in nb.cells:
        if cell.cell_type == 'markdown': cell.source = link_pages(cell.source, built)
        if cell.cell_type != 'code': cells.append(cell); continue
        flags = directives(cell.source)
        if 'hide' in flags or flags.get('include') == 'false': continue
        cell.source = '\n'.join(l for l in cell.source.splitlines() if not DIRECTIVE.match(l)).strip('\n')
        if not cell.source.strip() and not cell.get('outputs'): continue     # e.g. the `#| default_exp` cell
        why = skipped(flags, skip)
        if why: cell.source = f'# not run for this page ({", ".join(why)})\n' + cell.source
        if flags.get('echo') == 'false': cell.metadata.setdefault('tags', []).append('echo-false')
        if flags.get('output') == 'false': cell.outputs = []
        cells.append(cell)
    nb.cells = cells
    return nb


def build_page(nb_path: Path, out: Path, built: set[str], timeout: int, execute_cells: bool = True) -> tuple[str, float]:
    "Execute one notebook and write its HTML page; return (page name, seconds)."
    import nbformat
    from nbconvert import HTMLExporter
    t0 = time.perf_counter()
    skip = test_flags()
    nb = execute(nb_path, timeout, skip) if execute_cells else nbformat.read(nb_path, as_version=4)
    nb = prepare(nb, built, skip)
    from traitlets.config import Config
    config = Config({'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': {'echo-false'}}})
    exporter = HTMLExporter(config=config, template_name='lab', template_file=str(TEMPLATE), mathjax_url=MATHJAX_URL)
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': nb_path.stem}})
    (out / page_name(nb_path)).write_text(body, encoding='utf-8')
    return page_name(nb_path), time.perf_counter() - t0


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cltr_learn</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222 }}
table {{ border-collapse: collapse; margin: 1rem 0 }} th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left }}
th {{ background: #f3f3f3 }} pre {{ background: #f6f6f6; padding: .6rem; overflow-x: auto }} code {{ background: #f6f6f6 }}
img {{ max-width: 100% }} span.not-built {{ color: #888 }}
</style>
<script src="{mathjax}"></script>
</head><body>
{body}
</body></html>
"""


def build_index(out: Path, built: set[str], readme: Path = ROOT / 'README.md'):
    "index.html: README.md rendered, notebook links pointing at the built pages, its pictures copied."
    import mistune
    text = readme.read_text(encoding='utf-8')
    body = mistune.create_markdown(plugins=['table'], escape=False)(text)
    body = link_pages(body, built)
    # links to notebooks without a page: keep the name, drop the link
    body = re.sub(r'<a href="(?:nbs/)?[\w.-]+\.ipynb">(.*?)</a>', r'<span class="not-built">\1</span>', body)
    for src in re.findall(r'<img src="([^":]+)"', body):
        if (ROOT / src).is_file():
            (out / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / src, out / src)
    (out / 'index.html').write_text(INDEX.format(mathjax=MATHJAX_URL, body=body), encoding='utf-8')


def _build_one(args):
    nb_path, out, built, timeout, execute_cells = args
    try: return build_page(nb_path, out, built, timeout, execute_cells) + (None,)
    except Exception as e:
        (out / page_name(nb_path)).unlink(missing_ok=True)        # no stale page of a notebook that fails now
        return page_name(nb_path), 0.0, f'{type(e).__name__}: {str(e)[-2000:]}'


def build_site(out: Path, notebooks: list[Path], jobs: int = 2, timeout: int = 600, execute_cells: bool = True,
               mathjax_dir: Path = MATHJAX_SRC, log=print) -> list[str]:
    "Build the pages of `notebooks` and the index into `out`; return the failures (empty when all pages built)."
    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out / 'mathjax', mathjax_dir)
    pages = lambda: {p.stem for p in out.glob('*.html')} - {'index'}     # pages built now or by an earlier run
    built = {nb.stem for nb in notebooks} | pages()
    work = [(nb, out, built, timeout, execute_cells) for nb in notebooks]
    failures = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, secs, err in pool.map(_build_one, work):
            log(f'{name:32s} {"FAILED " + err if err else f"{secs:6.1f} s"}')
            if err: failures.append(f'{name}: {err}')
    build_index(out, pages())
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='*', type=Path, help='notebooks to build (default: every nbs/*.ipynb)')
    p.add_argument('--out', type=Path, default=ROOT / '_site', help='output folder (default: _site)')
    p.add_argument('--jobs', type=int, default=2, help='notebooks executed at once (default: 2)')
    p.add_argument('--timeout', type=int, default=600, help='seconds allowed per cell (default: 600)')
    p.add_argument('--from-outputs', '--no-execute', dest='no_execute', action='store_true',
                   help='convert without executing, with the outputs committed in the notebooks (fast)')
    p.add_argument('--mathjax-dir', type=Path, default=MATHJAX_SRC, help=f'a MathJax 2 installation (default: {MATHJAX_SRC})')
    args = p.parse_args(argv)
    notebooks = [nb.resolve() for nb in args.notebooks] or sorted(NBS.glob('[0-9]*.ipynb'))
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing: p.error(f'notebook not found: {", ".join(missing)}')
    os.environ.setdefault('JUPYTER_PREFER_ENV_PATH', '1')     # kernel "python3" = this environment's Python
    t0 = time.perf_counter()
    try:
        failures = build_site(args.out, notebooks, args.jobs, args.timeout, not args.no_execute, args.mathjax_dir)
    except FileNotFoundError as e:
        print(f'build_docs: {e}', file=sys.stderr); return 2
    print(f'{len(notebooks) - len(failures)}/{len(notebooks)} pages in {time.perf_counter() - t0:.0f} s: '
          f'{args.out / "index.html"}')
    for f in failures: print(f'FAILED {f}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
