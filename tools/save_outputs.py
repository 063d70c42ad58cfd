#!/usr/bin/env python3
"""Run notebooks (as `nbdev-test` does: offline, `slow`/`cuda` cells skipped) and keep their outputs for the docs.

Outputs are kept where they teach: a plot, a table, a short repr. Console progress bars, which the
notebooks print when run outside Jupyter, are compacted to their final state (the epoch table), so
that notebooks stay small. Then `nbdev-clean`. Usage: python tools/save_outputs.py [--slow] [notebook ...] (default: all; --slow: the slow and cuda cells too)
"""
import json, os, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_ = Path(sys.executable).parent
env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1', 'PYTHONWARNINGS': 'ignore', 'MPLBACKEND': 'Agg'}
_BAR = re.compile(r'^\s*(\S.*?:\s*)?\|[█-]+\|')

def compact(text:str)->str:
    "Apply carriage returns as a terminal would, and drop progress-bar lines."
    out = []
    for line in text.split('\n'):
        line = line.split('\r')[-1].rstrip().lstrip('█')
        if line and not _BAR.match(line): out.append(line)
    return '\n'.join(out) + ('\n' if out else '')

def tidy(nb_path:Path):
    nb = json.loads(nb_path.read_text())
    for c in nb['cells']:
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                o['text'] = compact(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
                if not o['text'].strip(): continue
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr': continue  # warnings are not documentation
            outs.append(o)
        if c['cell_type'] == 'code': c['outputs'] = outs
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

SLOW = '--slow' in sys.argv  # also run the `slow` and `cuda` cells (they check for what they need and say what they skip), to keep their outputs too

def run(nb):
    r = subprocess.run([str(bin_/'nbdev-test'), str(nb), '--save'] + (['--flags', 'slow cuda'] if SLOW else []), cwd=root, env=env, capture_output=True, text=True)
    if r.returncode == 0: tidy(nb)
    return nb, r.returncode, (r.stdout + r.stderr)[-3000:]

if __name__ == '__main__':
    nbs = [Path(a).resolve() for a in sys.argv[1:] if a != '--slow'] or sorted(p for p in [*(root/'nbs').glob('*.ipynb'), *(root/'nbs'/'tutorials').glob('*.ipynb')] if not p.name.startswith('_'))
    failed = 0
    with ThreadPoolExecutor(2) as ex:
        for nb, rc, out in ex.map(run, nbs):
            print(f"{'saved ' if rc == 0 else 'FAILED'} {nb.relative_to(root)} ({nb.stat().st_size // 1024} KB)", flush=True)
            if rc: print(out); failed += 1
    subprocess.run([str(bin_/'nbdev-clean')], cwd=root)
    sys.exit(1 if failed else 0)
