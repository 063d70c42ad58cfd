#!/usr/bin/env python3
"""Peak memory of `clip-nbdev-train` on large folders: does it grow with the number of images beyond the decoded cache?

Writes folders of small JPEGs (10 classes), then trains one epoch on each with a tiny CLIP and the
memory-mapped cache (`--cache_dir`), each run in its own process, and reports that process's peak
resident memory (`ru_maxrss` from `os.wait4`), the size of the cache file, and the wall time.
Pages of the memory-mapped cache that an epoch reads count in the resident memory, so the question
is whether peak RSS grows by more than the cache does.

    python bench/large_folder.py                  # 10,000 and 100,000 images (a few minutes on 2 cores)
    python bench/large_folder.py --sizes 2000 --smoke
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

def make_folder(root:Path, n:int, px:int=32, n_classes:int=10, seed:int=0)->Path:
    "`n` random `px`x`px` JPEGs under `root/train/<class>/` (written once, reused)."
    done = root/f'.done_{n}'
    if done.exists(): return root/'train'
    rng = np.random.default_rng(seed)
    for c in range(n_classes): (root/'train'/f'class_{c}').mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (n_classes, px, px, 3), dtype=np.uint8)
    for i in range(n):
        c = i % n_classes
        a = np.clip(base[c].astype(np.int16) + rng.integers(-40, 40, (px, px, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root/'train'/f'class_{c}'/f'{i:06d}.jpg', quality=90)
    done.touch()
    return root/'train'

def train_peak_rss(train_dir:Path, work:Path, bs:int, epochs:int)->dict:
    "Run one training in a child process; its peak RSS (MiB), cache size (MiB) and wall time."
    out, cache = work/'out', work/'cache'
    cmd = [sys.executable, '-m', 'clip_nbdev.cli', '--train_dir', str(train_dir), '--model_name', 'tiny', '--img_size', '32', '32',
           '--epochs', str(epochs), '--batch_size', str(bs), '--lr', '1e-3', '--cache_dir', str(cache), '--output_dir', str(out), '--overwrite']
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    log = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0: raise SystemExit(f"training failed:\n{log[-3000:]}")
    cache_mb = sum(f.stat().st_size for f in cache.glob('*.npy')) / 2**20
    return dict(peak_rss_mib=round(ru.ru_maxrss / 1024, 1), cache_mib=round(cache_mb, 1), wall_s=round(time.time() - t0, 1),
                summary=json.loads((out/'summary.json').read_text()))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[10_000, 100_000])
    ap.add_argument('--bs', type=int, default=256)
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--root', default=None, help='where to write the folders (default: a temporary folder)')
    ap.add_argument('--smoke', action='store_true', help='a quick run that checks the script works (no results file)')
    ap.add_argument('--out', default=None, help='JSON file for the results (default: bench/results/large-folder-<machine>.json)')
    a = ap.parse_args()
    root = Path(a.root or tempfile.mkdtemp())
    rows = []
    for n in a.sizes:
        t0 = time.time(); train_dir = make_folder(root/f'n{n}', n); t_make = time.time() - t0
        r = train_peak_rss(train_dir, root/f'run{n}', a.bs, a.epochs)
        rows.append(dict(n_images=n, make_s=round(t_make, 1), peak_rss_mib=r['peak_rss_mib'], cache_mib=r['cache_mib'], wall_s=r['wall_s'],
                         train_images_per_s=r['summary']['train_images_per_s']))
        print(f"{n:>8,} images: peak RSS {r['peak_rss_mib']:8.1f} MiB, cache {r['cache_mib']:7.1f} MiB, training run {r['wall_s']:6.1f} s "
              f"({r['summary']['train_images_per_s']:.0f} img/s); folder written in {t_make:.0f} s", flush=True)
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        d_rss, d_cache = hi['peak_rss_mib'] - lo['peak_rss_mib'], hi['cache_mib'] - lo['cache_mib']
        per_img = (d_rss - d_cache) * 2**20 / (hi['n_images'] - lo['n_images'])
        print(f"from {lo['n_images']:,} to {hi['n_images']:,} images: peak RSS +{d_rss:.1f} MiB, cache +{d_cache:.1f} MiB; "
              f"beyond the cache: {per_img:.0f} bytes per image")
    if a.smoke: return
    res = dict(machine=f"{os.cpu_count()}-core {platform.machine()}", date=time.strftime('%Y-%m-%d'), bs=a.bs, epochs=a.epochs, img_px=32, runs=rows)
    out = Path(a.out or Path(__file__).parent/'results'/f"large-folder-{os.cpu_count()}core-{platform.machine()}-{time.strftime('%Y-%m-%d')}.json")
    out.write_text(json.dumps(res, indent=1)); print('wrote', out)

if __name__ == '__main__': main()
