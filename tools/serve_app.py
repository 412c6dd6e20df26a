#!/usr/bin/env python
"""Serve the interactive explorers (`app/explorers.ipynb`) with Voila on 127.0.0.1.

    python tools/serve_app.py [--port 8866]

The page runs in a kernel started from this Python environment (the project's `.venv`), so the explorers use
the installed `cltr_learn`. `tests/test_browser.py` starts the server with the same command.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / 'app' / 'explorers.ipynb'


def voila_command(port: int, notebook: Path = APP) -> list[str]:
    "The Voila command line serving `notebook` on 127.0.0.1:`port`, no browser, no port fallback."
    voila = Path(sys.executable).parent / 'voila'
    if not voila.exists():
        raise FileNotFoundError(f"{voila} not found: install the development requirements (pip install -e '.[dev]')")
    return [str(voila), str(notebook), '--no-browser', f'--port={port}', '--Voila.ip=127.0.0.1',
            '--Voila.port_retries=0', '--VoilaConfiguration.extension_denylist=@jupyter-notebook/lab-extension']


def voila_env() -> dict:
    "Environment for the server: prefer this environment's kernelspec (python3 → this interpreter) over a user one."
    return dict(os.environ, JUPYTER_PREFER_ENV_PATH='1', PYTHONUNBUFFERED='1')


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--port', type=int, default=8866, help='port on 127.0.0.1 (default 8866)')
    args = p.parse_args(argv)
    cmd = voila_command(args.port)
    print(f'Serving the explorers on http://127.0.0.1:{args.port}/ (Ctrl-C stops)', flush=True)
    os.chdir(APP.parent)
    os.execve(cmd[0], cmd, voila_env())                      # become the server: signals reach Voila directly


if __name__ == '__main__':
    sys.exit(main())
