#!/usr/bin/env python3
"""Run the project's whole test suite: library, README and notebooks in sync and clean, the docs site, the
benchmarks in their --smoke mode, every notebook through `nbdev-test` (offline, skipping `slow`/`cuda`
cells), then every notebook top to bottom as Jupyter's Run All does (`jupyter nbconvert --execute`, which
ignores nbdev's flags: GPU-only and slow cells must check for what they need). Ends with `N passed, M failed`."""
import os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_ = Path(sys.executable).parent
env = {'OMP_NUM_THREADS': '1', **os.environ, 'HF_HUB_OFFLINE': '1', 'PYTHONWARNINGS': 'ignore', 'MPLBACKEND': 'Agg'}  # two notebooks at a time, one thread each

def run(cmd, **kw): return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, **kw)

def readme_commands(readme):
    "The lines of the first ```sh block of the README: the set-up and the test command."
    lines = readme.split('```sh\n', 1)[1].split('```', 1)[0].strip().splitlines()
    return [l for l in lines if l.strip()]

def check_ci():
    "`.ci/run` must run exactly the README's commands."
    want = readme_commands((root/'README.md').read_text())
    ci = [l for l in (root/'.ci'/'run').read_text().splitlines() if l.strip() and not l.startswith(('#', 'set ', 'cd '))]
    if ci != want: return False, f'.ci/run runs {ci}, the README says {want}'
    return True, '.ci/run runs the README commands'

def check_sync():
    "nbdev-export, nbdev-clean and the README build must leave git's working tree unchanged."
    for cmd in ([str(bin_/'nbdev-export')], [str(bin_/'nbdev-clean')], [sys.executable, 'tools/make_readme.py']):
        r = run(cmd)
        if r.returncode: return False, f'{cmd[-1]} failed:\n{r.stdout}{r.stderr}'
    if not (root/'.git').exists(): return True, 'not a git checkout: sync not checked'
    r = run(['git', 'status', '--porcelain', '--untracked-files=all', '--', 'clip_nbdev', 'nbs', 'README.md'])
    if r.stdout.strip(): return False, 'notebooks, library or README out of sync or not clean; run nbdev-export, nbdev-clean and tools/make_readme.py, then commit:\n' + r.stdout
    return True, 'library, README and notebooks in sync and clean'

def check_docs():
    "Build the docs site without Quarto into a temporary folder and check it (tools/build_docs.py --check)."
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        r = run([sys.executable, 'tools/build_docs.py', '--no-quarto', '--check', '--dest', d])
    out = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, out[-1] if r.returncode == 0 else '\n'.join(out[-40:])

# Every visible example shows its output (DESIGN.md): a visible code cell that displays something must carry the
# output that running the notebook produced (tools/save_outputs.py). Cells the docs do not show, or that nbdev-test
# does not run, are not required to.
OUTPUTS_PENDING = ()  # notebooks whose outputs are not saved yet (none)
NOT_SHOWN = ('hide', 'export', 'exporti', 'exports', 'default_exp', 'notest')  # hidden, or never run (slow and cuda cells are shown: tools/save_outputs.py --slow keeps theirs)
NOT_SHOWN_IF_FALSE = ('eval', 'include', 'output')  # `#| eval: false` ...
TEST_CALLS = ('test_eq', 'test_fail', 'test_close', 'test_ne', 'test_is', 'test_warns', 'test_stdout')

def shown(src):
    "Does the docs page show this cell's code and output, and does nbdev-test run it? (from its `#|` directives)"
    import re
    for l in src.splitlines():
        m = re.match(r'#\|\s*([\w-]+)\s*(?::\s*(\w+))?', l)  # `#| hide`, `#|hide`, `#| eval: false`, `#| export module`
        if m and (m[1] in NOT_SHOWN or (m[1] in NOT_SHOWN_IF_FALSE and (m[2] or '').lower() == 'false')): return False
    return True

def _top_calls(stmts):
    "The calls a cell makes when it runs: everything but the bodies of the functions and classes it defines."
    import ast
    todo = list(stmts)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
        if isinstance(n, ast.Call): yield n
        todo.extend(ast.iter_child_nodes(n))

def displays(src):
    "Does running this code cell display something? Its last statement an expression (not a test call, not ended by `;`), or a print, plot or show."
    import ast
    lines = [l for l in src.splitlines() if l.strip() and not l.startswith('#|')]
    if not lines: return False
    try: tree = ast.parse('\n'.join(lines))
    except SyntaxError: return True  # magics and the like: assume they show something
    if not tree.body: return False
    last = tree.body[-1]
    if isinstance(last, ast.Expr) and not lines[-1].rstrip().endswith(';'):
        v = last.value
        f = v.func if isinstance(v, ast.Call) else None
        if not (f is not None and getattr(f, 'id', getattr(f, 'attr', None)) in TEST_CALLS): return True
    for call in _top_calls(tree.body):
        name = getattr(call.func, 'id', getattr(call.func, 'attr', '')) or ''
        if name in ('print', 'display', 'imshow') or name.startswith(('show', 'plot')): return True
    return False

def missing_outputs(nb_path):
    "(cell number, first line) of each visible code cell of `nb_path` that displays something and has no saved output."
    import json
    out = []
    for i, c in enumerate(json.loads(Path(nb_path).read_text())['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        if not shown(src) or not displays(src) or c.get('outputs'): continue
        out.append((i, next((l for l in src.splitlines() if l.strip() and not l.startswith('#|')), '')))
    return out

def check_outputs():
    "Every visible code cell that displays something carries its saved output (DESIGN.md: outputs are produced, never typed)."
    nbs = sorted(p for p in [*(root/'nbs').glob('*.ipynb'), *(root/'nbs'/'tutorials').glob('*.ipynb')] if not p.name.startswith(('_', '.')))
    nbs = [nb for nb in nbs if nb.name not in OUTPUTS_PENDING]
    bad = [(nb, i, line) for nb in nbs for i, line in missing_outputs(nb)]
    if bad: return False, f'{len(bad)} visible cells that display something have no saved output (run tools/save_outputs.py NOTEBOOK):\n' + \
        '\n'.join(f'  {nb.relative_to(root)} cell {i}: {line}' for nb, i, line in bad)
    return True, f'every visible cell that displays something has its saved output in {len(nbs)} notebooks' + (f' (pending: {", ".join(OUTPUTS_PENDING)})' if OUTPUTS_PENDING else '')

BENCH_SMOKE = [['bench/gpu.py', '--smoke'], ['bench/gpu_cudagraph.py', '--smoke'], ['bench/large_folder.py', '--sizes', '500', '1000', '--smoke'],
               ['bench/ssl_digits.py', '--smoke'], ['bench/kfold_digits.py', '--smoke'], ['bench/peers.py', '--smoke'], ['bench/fewshot.py', '--smoke']]

def check_bench(args):
    "A benchmark in its --smoke mode: the scripts that measure speed and memory still run (their figures are not checked)."
    t = time.time()
    r = run([sys.executable, *args], timeout=600)
    return r.returncode == 0, f"{' '.join(args)} ({time.time() - t:.0f} s)" + ('' if r.returncode == 0 else '\n' + (r.stdout + r.stderr)[-3000:])

def test_nb(nb):
    t = time.time()
    r = run([str(bin_/'nbdev-test'), str(nb.relative_to(root))] + sys.argv[1:])
    return nb, r.returncode == 0, time.time() - t, r.stdout + r.stderr

def run_all(nb):
    "Execute `nb` top to bottom as Jupyter's Run All does, into a temporary folder (the notebook is not touched)."
    import tempfile
    t = time.time()
    with tempfile.TemporaryDirectory() as d:
        r = run([str(bin_/'jupyter'), 'nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.timeout=1200',
                 '--output-dir', d, str(nb.relative_to(root))])
    return nb, r.returncode == 0, time.time() - t, r.stdout + r.stderr

def main():
    passed = failed = 0
    ok, msg = check_sync()
    print(f"{'PASS' if ok else 'FAIL'} sync: {msg}", flush=True)
    passed, failed = passed + ok, failed + (not ok)
    ok, msg = check_ci()
    print(f"{'PASS' if ok else 'FAIL'} ci: {msg}", flush=True)
    passed, failed = passed + ok, failed + (not ok)
    ok, msg = check_docs()
    print(f"{'PASS' if ok else 'FAIL'} docs: {msg}", flush=True)
    passed, failed = passed + ok, failed + (not ok)
    ok, msg = check_outputs()
    print(f"{'PASS' if ok else 'FAIL'} outputs: {msg}", flush=True)
    passed, failed = passed + ok, failed + (not ok)
    for args in BENCH_SMOKE:
        ok, msg = check_bench(args)
        print(f"{'PASS' if ok else 'FAIL'} bench: {msg}", flush=True)
        passed, failed = passed + ok, failed + (not ok)
    nbs = sorted(p for p in [*(root/'nbs').glob('*.ipynb'), *(root/'nbs'/'tutorials').glob('*.ipynb')] if not p.name.startswith(('_', '.')))
    for what, f in (('', test_nb), ('run all: ', run_all)):
        with ThreadPoolExecutor(max_workers=2) as ex:
            for nb, ok, secs, out in ex.map(f, nbs):
                print(f"{'PASS' if ok else 'FAIL'} {what}{nb.relative_to(root)} ({secs:.0f} s)", flush=True)
                if not ok: print(out[-6000:], flush=True)
                passed, failed = passed + ok, failed + (not ok)
    print(f'{passed} passed, {failed} failed')
    sys.exit(1 if failed or len(nbs) == 0 else 0)

if __name__ == '__main__': main()
