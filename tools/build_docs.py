#!/usr/bin/env python3
"""Build the documentation site from the notebooks.

With Quarto on the PATH this runs `nbdev-docs` (the site GitHub Actions publishes, into `_docs/`).
Without it (Quarto cannot be installed everywhere: its pip package downloads a binary), it builds the
same pages from the same processed notebooks: nbdev's own processing (`show_doc` rendered, hidden
cells removed, into `_proc/`), then Jupyter's nbconvert to HTML, with a sidebar in the order of
nbdev's `sidebar.yml`, into `_site/` (or `--dest`). `--check` then asserts that every notebook has
its page, that the API pages show each exported symbol with its parameters, that no page holds a
Python traceback, and that every internal link and anchor resolves.

Usage: python tools/build_docs.py [--dest _site] [--no-quarto] [--check]
"""
import argparse, html, json, os, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_ = Path(sys.executable).parent

def proc_nbs():
    "nbdev's processing of the notebooks into `_proc/` (what `nbdev-proc-nbs` does, minus its Quarto installer)."
    os.chdir(root)
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.serve import proc_nbs as _proc
    import nbdev.doclinks
    cfg = get_config()
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    return _proc(str(cfg.nbs_path), n_workers=0, force=True), cfg

def sidebar_pages(proc):
    "The notebooks in sidebar order, as (section or None, path relative to `proc`)."
    import yaml
    def walk(items, section=None):
        for o in items:
            if isinstance(o, str):
                if o.endswith(('.ipynb', '.md', '.qmd')): yield section, o
            elif isinstance(o, dict): yield from walk(o.get('contents', []), o.get('section', section))
    return list(walk(yaml.safe_load((proc/'sidebar.yml').read_text())['website']['sidebar']['contents']))

def frontmatter(nb):
    "The YAML front matter nbdev put in the first raw cell, removed from `nb`."
    import yaml
    if nb.cells and nb.cells[0].cell_type == 'raw' and nb.cells[0].source.startswith('---'):
        fm = yaml.safe_load(nb.cells[0].source.strip().strip('-')) or {}
        nb.cells = nb.cells[1:]
        return fm
    return {}

_QATTR = re.compile(r'\[([^\]]+)\]\(([^)\s]+)\)\{target="_blank" style="([^"]*)"\}')

def prepare(nb):
    "Turn Quarto's cell options and link attributes into what nbconvert understands."
    for c in nb.cells:
        for k in [k for k in c if k not in ('cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments')]: del c[k]  # nbdev's markers
        c.metadata.pop('execution', None)  # timings from nbdev's show_doc run
        if c.cell_type == 'code':
            lines = c.source.splitlines()
            opts = {l[3:].split(':', 1)[0].strip(): l.split(':', 1)[1].strip() if ':' in l else '' for l in lines if l.startswith('#| ')}
            c.source = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
            tags = set(c.metadata.get('tags', []))
            if opts.get('echo') == 'false' or not c.source: tags.add('remove_input')
            c.metadata['tags'] = sorted(tags)
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md is not None:
                    md = ''.join(md) if isinstance(md, list) else md
                    o['data']['text/markdown'] = _QATTR.sub(lambda m: f'<a href="{m[2]}" target="_blank" style="{m[3]}">{m[1]}</a>', md)
        elif c.cell_type == 'markdown':
            c.source = _QATTR.sub(lambda m: f'<a href="{m[2]}" target="_blank" style="{m[3]}">{m[1]}</a>', c.source)
    return nb

CSS = """
body.jp-Notebook { margin-left: 17rem !important; max-width: 62rem; padding: 1rem 2rem !important; }
nav.cn-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 15rem; overflow-y: auto; padding: 1.2rem 1rem;
  background: #f6f7f9; border-right: 1px solid #dde1e6; font-family: system-ui, sans-serif; font-size: 0.92rem; }
nav.cn-sidebar .cn-title { font-weight: 700; font-size: 1.2rem; color: #1a4d8f; text-decoration: none; }
nav.cn-sidebar ul { list-style: none; padding-left: 0; margin: 0.6rem 0; }
nav.cn-sidebar li a { display: block; padding: 0.2rem 0.5rem; color: #333; text-decoration: none; border-radius: 4px; }
nav.cn-sidebar li a.active { background: #1a4d8f; color: white; }
nav.cn-sidebar .cn-section { margin-top: 0.8rem; color: #666; font-size: 0.8rem; text-transform: uppercase; letter-spacing: .05em; }
.jp-RenderedMarkdown pre { background: #f6f8fa; padding: 0.6rem 0.8rem; border-radius: 4px; overflow-x: auto; }
header.cn-header h1 { margin-bottom: 0.2rem; } header.cn-header p.cn-desc { color: #555; font-size: 1.1rem; margin-top: 0; }
"""

def inline_md(s:str)->str:
    "Escape `s` for HTML, rendering its `code` spans."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(s))

def page_name(rel, fm): return str(Path(rel).parent/fm['output-file']) if fm.get('output-file') else str(Path(rel).with_suffix('.html'))

def text_of(page:str)->str:
    "The visible text of an HTML page: no style or script, no tags, entities decoded."
    page = re.sub(r'<(style|script)[^>]*>.*?</\1>', ' ', page, flags=re.S)
    return html.unescape(re.sub(r'<[^>]+>', '', page))

def build(dest:Path):
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    proc, cfg = proc_nbs()
    site_url = str(cfg.get('doc_host', '')) + str(cfg.get('doc_baseurl', ''))
    pages = []
    for section, rel in sidebar_pages(proc):
        nb = nbformat.read(proc/rel, as_version=4)
        fm = frontmatter(nb)
        pages.append(dict(section=section, rel=rel, nb=nb, fm=fm, out=page_name(rel, fm), title=fm.get('title') or Path(rel).stem))
    ipynb2html = {p['rel']: p['out'] for p in pages}
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.HTMLExporter.exclude_input_prompt = c.HTMLExporter.exclude_output_prompt = True
    exp = HTMLExporter(config=c, template_name='lab')
    if dest.exists(): shutil.rmtree(dest)
    for p in pages:
        body, _ = exp.from_notebook_node(prepare(p['nb']))
        here = Path(p['out']).parent
        rel = lambda target: os.path.relpath(target, here) if str(here) != '.' else target
        nav = ['<nav class="cn-sidebar">', f'<a class="cn-title" href="{rel("index.html")}">{html.escape(cfg.get("lib_name", "docs"))}</a>', '<ul>']
        last = None
        for q in pages:
            if q['section'] != last and q['section']: nav.append(f'<li class="cn-section">{html.escape(q["section"])}</li>')
            last = q['section']
            cls = ' class="active"' if q is p else ''
            nav.append(f'<li><a{cls} href="{rel(q["out"])}">{html.escape(q["title"])}</a></li>')
        nav.append('</ul></nav>')
        head = f'<header class="cn-header"><h1>{html.escape(p["title"])}</h1>' + (f'<p class="cn-desc">{inline_md(p["fm"]["description"])}</p>' if p['fm'].get('description') else '') + '</header>'
        body = body.replace('</head>', f'<style>{CSS}</style></head>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m[1] + '\n'.join(nav) + head, body, count=1)
        body = re.sub(r'<title>[^<]*</title>', f'<title>{html.escape(p["title"])} – {html.escape(cfg.get("lib_name", ""))}</title>', body, count=1)
        # links to the published site become relative; links to notebooks become links to their pages
        if site_url: body = body.replace(site_url.rstrip('/') + '/', rel('.').rstrip('/') + '/' if str(here) != '.' else '')
        def fix_href(m):
            href = m[1]
            path, _, anchor = href.partition('#')
            if path.endswith('.ipynb'):
                target = os.path.normpath(os.path.join(str(Path(p['rel']).parent), path))
                if target in ipynb2html: href = rel(ipynb2html[target]) + (f'#{anchor}' if anchor else '')
            return f'href="{href}"'
        body = re.sub(r'href="([^"]+)"', fix_href, body)
        # Quarto's heading ids are lower-case; nbconvert keeps the case: add the lower-case id too
        body = re.sub(r'<(h[1-6]) id="([^"]+)"', lambda m: f'<a id="{m[2].lower()}"></a><{m[1]} id="{m[2]}"' if m[2] != m[2].lower() else m[0], body)
        out = dest/p['out']
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(body)
    for d in ('images',):  # pictures the notebooks' markdown shows (Quarto copies them too)
        if (cfg.nbs_path/d).is_dir(): shutil.copytree(cfg.nbs_path/d, dest/d, dirs_exist_ok=True)
    return pages

class _Links(HTMLParser):
    def __init__(self): super().__init__(); self.hrefs, self.ids, self.imgs = [], set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'img' and a.get('src') and not re.match(r'^(data|[a-z]+):', a['src']): self.imgs.append(a['src'])
        if a.get('id'): self.ids.add(a['id'])
        if a.get('name'): self.ids.add(a['name'])
        if tag == 'a' and a.get('href'): self.hrefs.append(a['href'])

def check(dest:Path):
    "Assert the site is complete and sound; return a list of problems (empty when all is well)."
    import nbformat
    from nbdev.config import get_config
    cfg, problems = get_config(), []
    for nb in sorted(cfg.nbs_path.glob('[0-9]*.ipynb')):
        page = re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'
        if not (dest/page).exists(): problems.append(f'no page {page} for {nb.name}')
    for t in sorted((cfg.nbs_path/'tutorials').glob('*.ipynb')):
        if not (dest/'tutorials'/(t.stem + '.html')).exists(): problems.append(f'no page for tutorial {t.name}')
    if not (dest/'index.html').exists(): problems.append('no home page index.html')
    learner = (dest/'learner.html').read_text() if (dest/'learner.html').exists() else ''
    if 'id="clip_learner"' not in learner: problems.append('learner.html has no clip_learner heading')
    for want in ['def clip_learner(', "model_name:str='openai/clip-vit-large-patch14', # hub id, local", 'output_dir', 'precision:str=', 'Learner.fit_warmup_cosine']:
        if want not in text_of(learner): problems.append(f'learner.html lacks {want!r}')
    parsed = {}
    for f in sorted(dest.rglob('*.html')):
        txt = f.read_text()
        body = re.sub(r'<(style|script)[^>]*>.*?</\1>', ' ', txt, flags=re.S)
        if 'Traceback (most recent call last)' in text_of(txt) or re.search(r'application/vnd\.jupyter\.stderr[^>]*>(?:(?!</div>).)*?\w+Error\b', body, re.S):
            problems.append(f'{f.relative_to(dest)} shows a Python traceback or error')
        parsed[f] = p = _Links(); p.feed(txt)
    for f, p in parsed.items():
        for src in p.imgs:
            if not (f.parent/src).exists(): problems.append(f'{f.relative_to(dest)}: missing image {src}')
        for href in p.hrefs:
            if re.match(r'^[a-z]+:', href) or href.startswith('//'): continue  # external
            path, _, anchor = href.partition('#')
            target = (f.parent/path).resolve() if path else f.resolve()
            if target not in {k.resolve() for k in parsed}: problems.append(f'{f.relative_to(dest)}: broken link {href}'); continue
            if anchor and anchor not in parsed[[k for k in parsed if k.resolve() == target][0]].ids:
                problems.append(f'{f.relative_to(dest)}: no anchor #{anchor} in {path or f.name}')
    return problems

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dest', default=str(root/'_site'), help='where the Quarto-less build writes the site')
    ap.add_argument('--no-quarto', action='store_true', help='build without Quarto even when it is installed')
    ap.add_argument('--check', action='store_true', help='check the built site and fail on any problem')
    a = ap.parse_args()
    if shutil.which('quarto') and not a.no_quarto:
        sys.exit(subprocess.run([str(bin_/'nbdev-docs')], cwd=root).returncode)
    dest = Path(a.dest).resolve()
    pages = build(dest)
    print(f'{len(pages)} pages written to {dest}')
    if a.check:
        problems = check(dest)
        for p in problems: print('PROBLEM', p)
        print(f"site check: {'ok' if not problems else f'{len(problems)} problems'}")
        sys.exit(1 if problems else 0)

if __name__ == '__main__': main()
