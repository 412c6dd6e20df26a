"""The documentation site: `tools/build_docs.py` (what `make docs` runs) builds two notebooks into a temporary
folder, and headless Chromium checks that the index is the README's curriculum table linking to the pages, that
math is typeset by the local MathJax, and that every figure is a real image.

The pages of the 15 core notebooks (00-14) are also built from their committed outputs, without executing
(`--from-outputs`, seconds), and each must show math typeset by MathJax, with no math error and no raw TeX left.
"""
from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import build_docs  # noqa: E402
from test_browser import CHROMIUM, NEEDS_CHROMIUM, chromium  # noqa: E402

NEEDS_MATHJAX = pytest.mark.skipif(
    not (build_docs.MATHJAX_SRC / 'MathJax.js').exists(),
    reason=f"no MathJax at {build_docs.MATHJAX_SRC}: install Debian's package as root (apt-get install -y libjs-mathjax)")
# a page with figures, and the page of this site's own notebook (math and the explorers' pictures)
PAGES = ['00_core', '21_widgets']
CORE = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if re.match(r'(0\d|1[0-4])_', p.name))


def test_directives_and_links():
    "The pieces that need no browser: directive parsing and notebook → page links."
    flags = build_docs.directives('#| export\n#|slow gpu\n#| eval: False\nx = 1\n#| not a directive')
    assert flags == {'export': '', 'slow': '', 'gpu': '', 'eval': 'false'}
    assert build_docs.directives('x = 1\n#| slow') == {}
    assert build_docs.skipped(flags, {'slow'}) == ['slow', 'eval: false']
    assert build_docs.skipped({'export': ''}, {'slow', 'gpu'}) == []
    md = '[a](03_pos_enc.ipynb) [b](nbs/00_core.ipynb) [c](../nbs/09_matcher.ipynb)'
    assert build_docs.link_pages(md, {'03_pos_enc', '09_matcher'}) == \
        '[a](03_pos_enc.html) [b](nbs/00_core.ipynb) [c](09_matcher.html)'
    assert build_docs.link_pages('<a href="nbs/00_core.ipynb">', {'00_core'}) == '<a href="00_core.html">'
    assert 'slow' in build_docs.test_flags()


def test_missing_mathjax_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='libjs-mathjax'):
        build_docs.copy_mathjax(tmp_path / 'mj', src=tmp_path / 'nowhere')


def _serve(out: Path):
    "Serve `out` on 127.0.0.1; return the server and its URL."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f'http://127.0.0.1:{server.server_address[1]}/'


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Build the pages of `PAGES` and the index, then serve the folder on 127.0.0.1."
    if not (build_docs.MATHJAX_SRC / 'MathJax.js').exists(): pytest.skip('libjs-mathjax is not installed')
    out = tmp_path_factory.mktemp('site')
    failures = build_docs.build_site(out, [ROOT / 'nbs' / f'{p}.ipynb' for p in PAGES], jobs=2, timeout=300)
    assert not failures, failures
    server, url = _serve(out)
    yield out, url
    server.shutdown()


@pytest.fixture(scope='module')
def core_site(tmp_path_factory):
    "The pages of the 15 core notebooks, converted from their committed outputs (nothing executed), served."
    if not (build_docs.MATHJAX_SRC / 'MathJax.js').exists(): pytest.skip('libjs-mathjax is not installed')
    out = tmp_path_factory.mktemp('core_site')
    failures = build_docs.build_site(out, [ROOT / 'nbs' / f'{p}.ipynb' for p in CORE], jobs=2, execute_cells=False,
                                     log=lambda *a: None)
    assert not failures, failures
    server, url = _serve(out)
    yield out, url
    server.shutdown()


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = chromium(p)
        yield b
        b.close()


@NEEDS_MATHJAX
def test_site_files(site):
    out, _ = site
    for p in PAGES: assert (out / f'{p}.html').stat().st_size > 10_000
    assert (out / 'mathjax' / 'MathJax.js').exists()
    page = (out / '21_widgets.html').read_text()
    assert 'mathjax/MathJax.js' in page and 'cdnjs' not in page        # math from the local copy only
    assert '#| export' not in page                                     # directives are hidden


@NEEDS_CHROMIUM
@NEEDS_MATHJAX
def test_index_is_the_curriculum_table(site, browser):
    out, url = site
    page = browser.new_page()
    page.goto(url + 'index.html')
    readme_rows = [l for l in (ROOT / 'README.md').read_text().splitlines() if re.match(r'\|\s*\[\d\d_', l)]
    rows = page.locator('table tr').filter(has=page.locator('td'))
    assert rows.count() >= len(readme_rows) > 0
    links = {a.inner_text(): a.get_attribute('href') for a in page.locator('table a').all()}
    for p in PAGES: assert links[p] == f'{p}.html'
    page.click(f'table a[href="{PAGES[0]}.html"]')                   # the link leads to the page
    page.wait_for_load_state('load')
    assert page.url.endswith(f'{PAGES[0]}.html') and page.locator('nav a[href="index.html"]').count() == 1
    page.close()


def _rendered(page) -> dict:
    "Counts of typeset math, math errors, raw TeX left in the text, and images (with and without pixels)."
    page.wait_for_function('window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0'
                           ' && document.querySelectorAll(".MathJax_CHTML, mjx-container, .MathJax").length > 0',
                           timeout=60_000)
    return page.evaluate('''() => ({
        math: document.querySelectorAll('.MathJax_CHTML, mjx-container, .MathJax').length,
        errors: document.querySelectorAll('.MathJax_Error, mjx-merror, .mjx-merror').length,
        raw_tex: [...document.querySelectorAll('.jp-RenderedMarkdown')].filter(e => /\\$\\$|\\$[^$\\s][^$]*\\$/.test(e.innerText)).length,
        images: [...document.querySelectorAll('img')].map(i => i.complete ? i.naturalWidth : -1),
    })''')


@NEEDS_CHROMIUM
@NEEDS_MATHJAX
def test_math_and_figures_render(site, browser):
    out, url = site
    page = browser.new_page()
    failed = []
    page.on('requestfailed', lambda r: failed.append(r.url))
    page.goto(url + '21_widgets.html', wait_until='load')
    r = _rendered(page)
    assert r['math'] >= 3 and r['errors'] == 0 and r['raw_tex'] == 0, r
    assert r['images'] and min(r['images']) > 0, r['images']          # every figure decoded with real pixels
    assert not failed, failed                                          # nothing missing (all local)
    page.goto(url + f'{PAGES[0]}.html', wait_until='load')
    imgs = page.evaluate('[...document.querySelectorAll("img")].map(i => i.naturalWidth)')
    assert imgs and min(imgs) > 0
    page.close()


def _typeset(page) -> dict:
    "Wait until MathJax has typeset the page (its queue has run), then count math, math errors and raw TeX."
    return page.evaluate('''() => new Promise(resolve => MathJax.Hub.Queue(() => resolve({
        math: document.querySelectorAll('.MathJax_CHTML, mjx-container, .MathJax').length,
        errors: document.querySelectorAll('.MathJax_Error, mjx-merror, .mjx-merror').length,
        raw_tex: [...document.querySelectorAll('.jp-RenderedMarkdown')]
                 .filter(e => /\\$\\$|\\$[^$\\s][^$]*\\$/.test(e.innerText)).map(e => e.innerText.slice(0, 80)),
    })))''')


def test_core_pages_are_built_without_executing(core_site):
    out, _ = core_site
    assert sorted(p.stem for p in out.glob('[0-9]*.html')) == CORE and len(CORE) == 15
    page = (out / '01_synthetic.html').read_text()
    assert 'd_i = \\frac' in page                                   # the formula reaches the page as TeX ...
    assert 'data:image/jpeg;base64' in page or 'data:image/png;base64' in page     # ... with the committed figures


@NEEDS_CHROMIUM
@NEEDS_MATHJAX
@pytest.mark.parametrize('name', CORE)
def test_core_page_has_typeset_math(core_site, browser, name):
    _, url = core_site
    page = browser.new_page()
    page.goto(url + f'{name}.html', wait_until='load')
    r = _typeset(page)
    page.close()
    assert r['math'] > 0, f'{name}: no math typeset by MathJax: write formulas as $...$ or $$...$$ in markdown'
    assert r['errors'] == 0 and not r['raw_tex'], r


@NEEDS_CHROMIUM
@NEEDS_MATHJAX
def test_typeset_check_can_fail(core_site, browser, tmp_path):
    "A page without math, served beside the others (so MathJax loads the same way), counts no math."
    out, url = core_site
    plain = (out / 'nomath.html')
    text = (out / '00_core.html').read_text()
    body = re.sub(r'\$[^$]*\$', '', text[text.index('<body'):])            # every formula of the body removed
    plain.write_text(text[:text.index('<body')] + body)
    page = browser.new_page()
    page.goto(url + 'nomath.html', wait_until='load')
    assert _typeset(page)['math'] == 0
    page.close()
