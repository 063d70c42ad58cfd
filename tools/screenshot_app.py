#!/usr/bin/env python3
"""A screenshot of the `clip-nbdev-app` page, with its first example predicted, in headless Chromium, for nbs/10_app.ipynb.

Usage: python tools/screenshot_app.py [--model_path output/best_model --examples data/test] [--out nbs/images/app.png]
Without --model_path it trains the tiny pretrained CLIP on 300 of scikit-learn's digits for one epoch (seconds, offline) and uses those.
The page is served on a free local port; Chromium loads it with no other network. The PNG is reduced to 256 colours to stay small.
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def digits_model(tmp:Path):
    "A best_model trained for one epoch on the digits, and their test folder."
    from clip_nbdev.data import clip_dls
    from clip_nbdev.datasets import digits_folder
    from clip_nbdev.learner import clip_learner
    path = digits_folder(tmp/'digits', n=300, words=True)
    learn = clip_learner(clip_dls(path/'train', img_size=32, bs=32, seed=0), 'tiny-pretrained', output_dir=tmp/'run', head_init='zeroshot', lr=1e-3)
    learn.fit_warmup_cosine(1)
    return tmp/'run'/'best_model', path/'test'

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model_path', default=None)
    ap.add_argument('--examples', default=None)
    ap.add_argument('--out', default=str(root/'nbs'/'images'/'app.png'))
    ap.add_argument('--size', default='1000,640', help='window width,height in pixels')
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None: sys.exit('no chromium on the PATH: apt-get install chromium (Debian) to take screenshots')
    from clip_nbdev.app import clip_app, launch_app
    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, examples = (a.model_path, a.examples) if a.model_path else digits_model(tmp)
        demo = clip_app(model, examples=examples, n_examples=8, top_k=5, title='Handwritten digits' if not a.model_path else None)
        with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
        t = time.time()
        launch_app(demo, port=port, block=False, quiet=True)
        print(f'serving on port {port} after {time.time() - t:.1f} s')
        png = tmp/'app.png'
        try:
            cmd = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                   '--disable-component-update', '--disable-sync', '--hide-scrollbars', f'--user-data-dir={tmp/"profile"}',
                   f'--window-size={a.size}', '--virtual-time-budget=15000', f'--screenshot={png}', f'http://127.0.0.1:{port}/']
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        finally: demo.close()
        if r.returncode or not png.exists(): sys.exit(f'screenshot failed: {r.stderr[-500:]}')
        out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert('RGB').quantize(256).save(out, optimize=True)
    print(out, f'{out.stat().st_size / 1024:.0f} KB')

if __name__ == '__main__': main()
