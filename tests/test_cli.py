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
    r = cli('eval', '--data', 'synthetic')
    assert r.returncode == 2
    assert '--checkpoint' in r.stderr


def test_predict_without_checkpoint_uses_the_shipped_model_and_names_a_missing_input():
    r = cli('predict', 'no_such_image.png', '--quiet')
    assert r.returncode == 1, r.stderr
    assert 'no_such_image.png' in r.stderr and 'does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_demo_rejects_bad_numbers_before_training():
    for args, name in ((('--threads', '0'), '--threads'), (('--steps', '-3'), '--steps'), (('--minutes', 'nan'), '--minutes')):
        r = cli('demo', '--out', 'never_written', *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr[-500:])
        assert name in r.stderr and 'expected a positive' in r.stderr


def test_demo_threads_follow_the_cpu_affinity():
    code = ("import os; from cltr_learn.runs import cpu_threads; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "print(cpu_threads())")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '1'
