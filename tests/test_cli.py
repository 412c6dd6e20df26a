"""The `cltr-learn` console script: it is installed, answers, and rejects bad arguments clearly."""
import subprocess
import sys


def cli(*args):
    return subprocess.run([sys.executable, '-m', 'cltr_learn.cli', *args], capture_output=True, text=True, timeout=120)


def test_info_prints_versions():
    r = cli('info')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('cltr_learn ')
    assert 'torch ' in r.stdout


def test_console_script_is_installed():
    exe = [p for p in __import__('pathlib').Path(sys.executable).parent.glob('cltr-learn*')]
    assert exe, 'the cltr-learn console script is not installed next to the interpreter'
    r = subprocess.run([str(exe[0]), '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for command in ('info', 'demo', 'train', 'eval', 'predict', 'data'):
        assert command in r.stdout


def test_unknown_command_fails_with_usage():
    r = cli('frobnicate')
    assert r.returncode == 2
    assert 'invalid choice' in r.stderr


def test_missing_required_argument_is_named():
    r = cli('predict', 'image.png')
    assert r.returncode == 2
    assert '--checkpoint' in r.stderr
