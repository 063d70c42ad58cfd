#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb without Quarto (which `nbdev-readme` needs): markdown cells as they are,
code cells in fenced blocks, cells marked `#| hide` left out, nbdev's `#|` directives removed."""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def readme(nb_path=root/'nbs'/'index.ipynb'):
    cells, out = json.loads(Path(nb_path).read_text())['cells'], []
    for c in cells:
        src = ''.join(c['source']).strip('\n')
        lines = src.splitlines()
        directives = [l for l in lines if l.startswith('#|')]
        if any(d.replace(' ', '') in ('#|hide', '#|exporti') for d in directives): continue
        body = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        if not body: continue
        if c['cell_type'] == 'markdown':  # links to notebooks are relative to nbs/, the README sits one level up
            body = re.sub(r'\]\((?!https?:|#|/)([^)]+\.ipynb)\)', r'](nbs/\1)', body)
        out.append(body if c['cell_type'] == 'markdown' else f'```python\n{body}\n```')
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    (root/'README.md').write_text('<!-- WARNING: generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file -->\n\n' + readme())
