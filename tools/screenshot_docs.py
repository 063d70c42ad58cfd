#!/usr/bin/env python3
"""Screenshots of the built docs site in headless Chromium (Debian's `chromium` package), to look at.

Usage: python tools/build_docs.py --no-quarto && python tools/screenshot_docs.py [--site _site] [--out _site/screenshots] [page.html ...]
Default pages: the home page and the learner API page. Chromium runs with no network (file:// URLs only).
"""
import argparse, shutil, subprocess, sys, tempfile
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('pages', nargs='*', default=['index.html', 'learner.html'])
    ap.add_argument('--site', default=str(root/'_site'))
    ap.add_argument('--out', default=None, help='folder for the PNG files (default: SITE/screenshots)')
    ap.add_argument('--size', default='1280,1600', help='window width,height in pixels')
    a = ap.parse_args()
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None: sys.exit('no chromium on the PATH: apt-get install chromium (Debian) to take screenshots')
    site, out = Path(a.site).resolve(), Path(a.out or Path(a.site)/'screenshots').resolve()
    out.mkdir(parents=True, exist_ok=True)
    for page in a.pages:
        png = out/(Path(page).stem + '.png')
        with tempfile.TemporaryDirectory() as prof:
            cmd = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                   '--disable-component-update', '--disable-sync', '--hide-scrollbars', f'--user-data-dir={prof}',
                   f'--window-size={a.size}', f'--screenshot={png}', (site/page).as_uri()]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode or not png.exists(): sys.exit(f'screenshot of {page} failed: {r.stderr[-500:]}')
        print(png)

if __name__ == '__main__': main()
