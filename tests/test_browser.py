"""The explorers in a real browser: Voila serves `app/explorers.ipynb` on 127.0.0.1 (as `make app` does) and
headless Chromium (Debian's `chromium`, driven by Playwright) loads the page, moves one slider of every
explorer, and checks that its picture changed and that no error is shown; it also uploads a picture, and a text
file named `.png`, to the photo explorer.

Screenshots of each explorer go to a temporary folder, or to `docs/screenshots/` with
`CLTR_SAVE_SCREENSHOTS=1` (that is how the README pictures are made).
"""
from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
from serve_app import APP, voila_command, voila_env  # noqa: E402

CHROMIUM = Path(os.environ.get('CLTR_CHROMIUM', '/usr/bin/chromium'))
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--disable-quic', '--no-first-run']
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's package as root (apt-get install -y chromium), "
           "or point CLTR_CHROMIUM at a Chromium binary")

# (css class of the explorer, label of the slider the test moves, screenshot name)
EXPLORERS = [
    ('cltr-shape-explorer', 'image H', 'shapes'),
    ('cltr-attention-explorer', 'query', 'attention'),
    ('cltr-matching-explorer', 'pair (head)', 'matching'),
    ('cltr-pe-explorer', 'temperature', 'pos_encoding'),
]
PHOTO = 'cltr-photo-explorer'                           # the photo explorer: an upload, tested on its own
N_EXPLORERS = len(EXPLORERS) + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def save_small(png: bytes, path: Path, max_width: int = 760, colors: int = 96):
    "Save a screenshot as a small palette PNG (README pictures stay a few tens of kB)."
    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert('RGB')
    if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@pytest.fixture(scope='module')
def app_url(tmp_path_factory):
    "Start the Voila server on a free port; stop it (its whole process group) afterwards."
    port = free_port()
    log_path = tmp_path_factory.mktemp('voila') / 'voila.log'
    log = open(log_path, 'w')
    proc = subprocess.Popen(voila_command(port), cwd=APP.parent, env=voila_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f'voila exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}')
            try:
                with urllib.request.urlopen(url + 'voila/static/voila.js', timeout=5): break
            except OSError:
                if time.time() > deadline: pytest.fail(f'voila did not answer on {url}:\n{log_path.read_text()[-3000:]}')
                time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()


@pytest.fixture(scope='module')
def page(app_url):
    "The explorers page, loaded in headless Chromium, with every explorer's picture drawn."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = chromium(p)
        page = browser.new_page(viewport={'width': 1100, 'height': 900})
        page.errors = []                                   # uncaught exceptions in the page
        page.on('pageerror', lambda e: page.errors.append(str(e)))
        page.goto(app_url, wait_until='domcontentloaded', timeout=60_000)
        n = N_EXPLORERS
        page.wait_for_function(                           # every picture drawn, or an error shown (stop early)
            f"document.querySelectorAll('.cltr-explorer img.widget-image[src^=\"blob:\"]').length >= {n}"
            " || document.querySelector('.cltr-error') !== null"
            " || document.body.innerText.includes('There was an error when executing cell')",
            timeout=240_000)
        assert not shown_errors(page), shown_errors(page)
        yield page
        browser.close()


def shown_errors(page) -> list[str]:
    "Error text visible on the page: explorer errors, failed cells, stderr outputs, tracebacks."
    found = [e.inner_text() for e in page.locator('.cltr-error').all()]
    found += [e.inner_text() for e in page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all()]
    text = page.locator('body').inner_text()
    found += [k for k in ('There was an error when executing cell', 'Traceback (most recent call last)') if k in text]
    return found + page.errors


def move_slider(box, label: str, steps: int = 1):
    "Move the slider labelled `label` inside `box` by `steps` key presses (the way a keyboard user would), down from its maximum."
    slider = box.locator('.widget-slider').filter(has=box.page.locator('label', has_text=label)).first
    handle = slider.locator('.noUi-handle').first
    before = handle.get_attribute('aria-valuenow')
    at_max = float(before) >= float(handle.get_attribute('aria-valuemax'))
    handle.focus()
    for _ in range(steps): handle.press('ArrowLeft' if at_max else 'ArrowRight')
    return before, handle


@NEEDS_CHROMIUM
def test_page_loads_without_errors(page):
    assert page.locator('.cltr-explorer').count() == N_EXPLORERS
    assert not shown_errors(page)


@NEEDS_CHROMIUM
def test_kernel_is_this_environment(page):
    "The page's kernel runs this environment's Python (the project's venv), not another Jupyter's."
    text = page.locator('.cltr-kernel code').inner_text()
    assert Path(text).parent == Path(sys.executable).parent, (text, sys.executable)


@NEEDS_CHROMIUM
@pytest.mark.parametrize('css, label, name', EXPLORERS, ids=[e[2] for e in EXPLORERS])
def test_slider_redraws_picture(page, css, label, name, tmp_path):
    box = page.locator(f'.{css}')
    box.scroll_into_view_if_needed()
    img = box.locator('img.widget-image')
    src0, shot0 = img.get_attribute('src'), img.screenshot()
    before, handle = move_slider(box, label)
    page.wait_for_function('([el, src]) => el.src !== src', arg=[img.element_handle(), src0], timeout=30_000)
    assert handle.get_attribute('aria-valuenow') != before
    assert img.screenshot() != shot0, 'the picture was replaced by an identical one'
    assert img.evaluate('el => el.naturalWidth') > 100
    assert not shown_errors(page)
    out = ROOT / 'docs' / 'screenshots' if os.environ.get('CLTR_SAVE_SCREENSHOTS') else tmp_path
    save_small(box.screenshot(), out / f'{name}.png')
    assert (out / f'{name}.png').stat().st_size > 1000


def crowd_png(path: Path, height: int = 160, width: int = 224, n_heads: int = 12, seed: int = 5) -> Path:
    "Write a small synthetic crowd (notebook 01) as a PNG file."
    from PIL import Image
    from cltr_learn.synthetic import make_crowd
    Image.fromarray(make_crowd(height, width, n_heads, seed)[0]).save(path)
    return path


def upload(box, path: Path):
    "Click the explorer's upload button and choose `path` in the file dialog it opens, as a reader does."
    with box.page.expect_file_chooser(timeout=30_000) as chooser:
        box.locator('.widget-upload').click()
    chooser.value.set_files(str(path))


@NEEDS_CHROMIUM
def test_photo_upload_redraws_and_counts(page, tmp_path):
    box = page.locator(f'.{PHOTO}')
    box.scroll_into_view_if_needed()
    img, label = box.locator('img.widget-image'), box.locator('.cltr-photo-count')
    assert 'sample_crowd.png' in box.inner_text() and ' head' in label.inner_text()
    src0, shot0 = img.get_attribute('src'), img.screenshot()
    upload(box, crowd_png(tmp_path / 'my_crowd.png'))
    page.wait_for_function('([el, src]) => el.src !== src', arg=[img.element_handle(), src0], timeout=60_000)
    page.wait_for_function("el => el.innerText.includes('my_crowd.png') && el.innerText.includes('predicted in')",
                           arg=box.element_handle(), timeout=30_000)           # past the 'predicting …' line
    assert re.fullmatch(r'\d+ heads?', label.inner_text()), label.inner_text()
    assert '224×160 px' in box.inner_text()
    assert img.screenshot() != shot0, 'the picture was replaced by an identical one'
    assert img.evaluate('el => [el.naturalWidth, el.naturalHeight]') == [224, 160]
    assert not shown_errors(page)
    save_small(box.screenshot(), tmp_path / 'photo.png')


@NEEDS_CHROMIUM
def test_photo_upload_of_a_text_file_is_refused(page, tmp_path):
    box = page.locator(f'.{PHOTO}')
    box.scroll_into_view_if_needed()
    img = box.locator('img.widget-image')
    src0 = img.get_attribute('src')
    notes = tmp_path / 'notes.png'
    notes.write_text('a shopping list, not a picture\n')
    upload(box, notes)
    message = box.locator('.cltr-photo-message')
    message.wait_for(timeout=60_000)
    assert "'notes.png' is not an image" in message.inner_text()
    assert img.get_attribute('src') == src0, 'the previous picture should stay'
    assert 'Traceback' not in box.inner_text() and not shown_errors(page)
    move_slider(box, 'threshold')                          # the explorer goes on working with the previous picture
    message.wait_for(state='detached', timeout=30_000)
    assert re.fullmatch(r'\d+ heads?', box.locator('.cltr-photo-count').inner_text())
    assert not shown_errors(page)
