#!/usr/bin/env python3
"""Images/s of the Learner fed from JPEG files against a bare PyTorch loop over tensors already on the GPU, in one process.

The model is the CLIP ViT-L/14 vision tower (randomly initialised: the architecture and cost of
`openai/clip-vit-large-patch14`, no download), saved with `save_pretrained` and loaded back by both sides.
The bare loop is `bench/reference/raw_torch_reference.py`'s: bf16 autocast, fused `torch.optim.AdamW`,
random tensors already on the GPU, no data loading and no augmentation. The Learner is what a user runs:
`clip_dls` over a generated folder of JPEGs (decoded once into the cache), RandAugment (n=2, m=7) and
normalisation on the GPU, `clip_learner(precision='bf16')`. Both are timed over the same number of steps
after the same warm-up, with peak GPU memory; the Learner also with `num_workers=4` on 4 CPU cores
(a Kaggle or Colab GPU notebook) and with `--compile`; prediction against a bare `no_grad` loop.

    python bench/gpu.py                 # on a GPU: writes bench/results/gpu-<gpu>-<date>.json (or $OUT/gpu.json)
    python bench/gpu.py --smoke         # anywhere, in a minute: a small ViT, a small folder, few steps (CI runs this)
"""
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time, warnings
from multiprocessing import Pool
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, torch
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel
from fastai.basics import Callback, CancelFitException
from clip_nbdev.core import *
from clip_nbdev.data import *
from clip_nbdev.model import clip_classifier
from clip_nbdev.learner import *
from clip_nbdev.predict import predict_images

DEV = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
def sync():
    if DEV.type == 'cuda': torch.cuda.synchronize()
def reset_peak():
    if DEV.type == 'cuda': torch.cuda.reset_peak_memory_stats()
def peak_gib(): return round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV.type == 'cuda' else None
def amp(): return torch.autocast(DEV.type, dtype=torch.bfloat16, enabled=DEV.type == 'cuda')

def vit_checkpoint(path:Path, smoke:bool)->Path:
    "The ViT-L/14 vision tower (or, for --smoke, a small ViT), random, written with `save_pretrained`."
    cfg = (CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8) if smoke else
           CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224, patch_size=14, projection_dim=768))
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(path)
    return path

def _write(args):
    path, i, px, c = args
    rng = np.random.default_rng(i)
    a = np.clip(rng.normal(60 + 18 * c, 50, (px, px, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path/f'class_{c}'/f'{i:06d}.jpg', quality=90)

def make_folder(path:Path, n:int, px:int, n_classes:int=10)->Path:
    "`n` JPEGs of `px`x`px` under `path/<class>/`, written by all cores."
    for c in range(n_classes): (path/f'class_{c}').mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count()) as p: p.map(_write, [(path, i, px, i % n_classes) for i in range(n)], chunksize=256)
    return path

def bare_train(ckpt, sz, bs, warm, steps, compiled=False)->dict:
    "The bar: bf16, fused AdamW, random tensors already on the device."
    model = clip_classifier(ckpt, 10, img_size=sz).to(DEV)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-6, weight_decay=0.01, fused=DEV.type == 'cuda' or None)
    if compiled: model.compile()
    x, y = torch.randn(bs, 3, sz, sz, device=DEV), torch.randint(0, 10, (bs,), device=DEV)
    def step():
        with amp(): loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    for _ in range(warm): step()
    sync(); reset_peak(); t = time.perf_counter()
    for _ in range(steps): step()
    sync(); dt = time.perf_counter() - t
    res = dict(img_s=round(bs * steps / dt, 1), peak_gib=peak_gib())
    del model, opt; torch.cuda.empty_cache() if DEV.type == 'cuda' else None
    return res

class StepTimer(Callback):
    "Time `steps` training batches after `warm`, then stop the fit."
    order = 100
    def __init__(self, warm, steps): self.warm, self.steps = warm, steps
    def before_fit(self): self.i, self.dt = 0, None
    def after_batch(self):
        if not self.training: return
        self.i += 1
        if self.i == self.warm: sync(); reset_peak(); self.t = time.perf_counter()
        if self.i == self.warm + self.steps:
            sync(); self.dt = time.perf_counter() - self.t
            raise CancelFitException

def learner_train(ckpt, folder, cache, sz, bs, warm, steps, num_workers=0, compiled=False, **kwargs)->dict:
    "The Learner on the JPEG folder (decoded into `cache` once), RandAugment on the device; `kwargs` go to `clip_learner`."
    dls = clip_dls(folder, img_size=sz, bs=bs, valid_pct=0.01, cache=cache, num_workers=num_workers, seed=0)
    if len(dls.train) < warm + steps: raise ValueError(f"{len(dls.train)} batches of {bs} in the folder: need {warm + steps}, make it larger")
    timer = StepTimer(warm, steps)
    learn = clip_learner(dls, ckpt, lr=3e-6, precision='bf16' if DEV.type == 'cuda' else 'fp32', compile=compiled, cbs=[timer] + kwargs.pop('cbs', []), **kwargs)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 3e-6)
    if timer.dt is None: raise RuntimeError("the epoch ended before the timed steps")
    res = dict(img_s=round(bs * steps / timer.dt, 1), peak_gib=peak_gib(), fit_s=round(time.perf_counter() - t, 1),
               compiled=bool(getattr(learn, 'compiled', False)))
    del learn, dls; torch.cuda.empty_cache() if DEV.type == 'cuda' else None
    return res

def inference(ckpt, cache, files, sz, bs, reps:int=3)->dict:
    "`predict_images` (decoded cache -> device -> bf16 forward) against a bare no_grad loop over a device tensor."
    model = clip_classifier(ckpt, 10, img_size=sz).to(DEV).eval()
    files = files[:max(bs * 4, 0)] if len(files) > bs * 4 else files
    prec = 'bf16' if DEV.type == 'cuda' else 'fp32'
    predict_images(model, cache, files[:bs], bs=bs, device=DEV, precision=prec, progress=False)  # warm-up
    sync(); t = time.perf_counter()
    for _ in range(reps): predict_images(model, cache, files, bs=bs, device=DEV, precision=prec, progress=False)
    sync(); lib = len(files) * reps / (time.perf_counter() - t)
    x = torch.randn(bs, 3, sz, sz, device=DEV)
    with torch.no_grad(), amp():
        model(x); sync(); t = time.perf_counter()
        for _ in range(reps * (len(files) // bs)): model(x).float().softmax(-1)
        sync(); bare = bs * reps * (len(files) // bs) / (time.perf_counter() - t)
    return dict(library_img_s=round(lib, 1), bare_img_s=round(bare, 1), ratio=round(lib / bare, 3))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--smoke', action='store_true', help='small ViT, small folder, few steps: checks the script anywhere (CI)')
    ap.add_argument('--n_images', type=int, default=24_000, help='JPEGs in the 64 px folder')
    ap.add_argument('--n_images_224', type=int, default=4_096, help='JPEGs in the 224 px folder')
    ap.add_argument('--points', default='64:8,64:256,64:1024,224:64', help='size:batch pairs to train at')
    ap.add_argument('--compile_points', default='64:1024,224:64', help="size:batch pairs also run with --compile ('' for none)")
    ap.add_argument('--four_cores_point', default='64:1024', help="size:batch also run on 4 CPU cores with num_workers=4 ('' for none)")
    ap.add_argument('--warm', type=int, default=4)
    ap.add_argument('--steps', type=int, default=15)
    ap.add_argument('--out', default=None, help='JSON file (default: $OUT/gpu.json where $OUT is set, else bench/results/gpu-<device>-<date>.json)')
    a = ap.parse_args()
    if a.smoke:
        a.n_images, a.n_images_224, a.warm, a.steps = 400, 0, 2, 3
        a.points, a.four_cores_point = '32:8,32:64', '32:64'
        a.compile_points = a.compile_points if '--compile_points' in sys.argv else ''
    pts = lambda s: [tuple(map(int, p.split(':'))) for p in s.split(',') if p]
    if DEV.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    tmp, t0 = Path(tempfile.mkdtemp()), time.time()
    device = torch.cuda.get_device_name() if DEV.type == 'cuda' else f'CPU ({platform.machine()}, {os.cpu_count()} cores)'
    res = dict(device=device, date=time.strftime('%Y-%m-%d'), torch=torch.__version__, cpus=os.cpu_count(), smoke=a.smoke,
               setup=dict(warm=a.warm, steps=a.steps, n_images=a.n_images, n_images_224=a.n_images_224, randaugment='n=2, m=7'), train=[], inference=None)
    out = Path(a.out) if a.out else None if a.smoke else (Path(os.environ['OUT'])/'gpu.json' if os.environ.get('OUT') else
           Path(__file__).parent/'results'/f"gpu-{device.split('(')[0].strip().replace(' ', '-')}-{res['date']}.json")
    def save():  # after every measurement: a run cut short by its time limit keeps what it measured
        if out: out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1))
    ckpt = vit_checkpoint(tmp/'vit', a.smoke)
    sizes = sorted({sz for sz,_ in pts(a.points) + pts(a.compile_points) + pts(a.four_cores_point)})
    folders, caches = {}, {}
    for sz in sizes:
        n = a.n_images if sz <= 64 else a.n_images_224
        t = time.time(); folders[sz] = make_folder(tmp/f'jpg{sz}', n, sz); tw = time.time() - t
        t = time.time(); caches[sz] = ImageCache((sz, sz)); caches[sz].add(find_images(folders[sz]), progress=False)
        print(f"{n} JPEGs of {sz} px: written in {tw:.1f} s, decoded into the cache in {time.time() - t:.1f} s", flush=True)
    def record(sz, bs, variant, fn_l, fn_b):
        row = dict(size=sz, bs=bs, variant=variant)
        try:
            row['bare'] = fn_b(); row['learner'] = fn_l()
            row['ratio'] = round(row['learner']['img_s'] / row['bare']['img_s'], 3)
            if row['bare']['peak_gib']: row['memory_ratio'] = round(row['learner']['peak_gib'] / row['bare']['peak_gib'], 3)
        except Exception as e: row['error'] = f'{type(e).__name__}: {str(e)[:300]}'
        res['train'].append(row); print(json.dumps(row), flush=True); save()
    for sz, bs in pts(a.points):
        record(sz, bs, 'all cores, num_workers=0', lambda: learner_train(ckpt, folders[sz], caches[sz], sz, bs, a.warm, a.steps),
               lambda: bare_train(ckpt, sz, bs, a.warm, a.steps))
    for sz, bs in pts(a.compile_points):
        record(sz, bs, 'compile', lambda: learner_train(ckpt, folders[sz], caches[sz], sz, bs, a.warm + 2, a.steps, compiled=True),
               lambda: bare_train(ckpt, sz, bs, a.warm + 2, a.steps, compiled=True))
    inf_sz = 64 if 64 in caches else sizes[0]
    res['inference'] = dict(size=inf_sz, bs=1024 if not a.smoke else 64,
                            **inference(ckpt, caches[inf_sz], find_images(folders[inf_sz]), inf_sz, 1024 if not a.smoke else 64))
    print(json.dumps(res['inference']), flush=True); save()
    for sz, bs in pts(a.four_cores_point):  # last: it restricts this process to 4 cores
        if hasattr(os, 'sched_setaffinity'): os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:4])
        torch.set_num_threads(min(4, torch.get_num_threads()))
        record(sz, bs, '4 cores, num_workers=4', lambda: learner_train(ckpt, folders[sz], caches[sz], sz, bs, a.warm, a.steps, num_workers=4),
               lambda: bare_train(ckpt, sz, bs, a.warm, a.steps))
    res['total_s'] = round(time.time() - t0, 1)
    errors = [r for r in res['train'] if 'error' in r]
    save(); print('wrote', out) if out else None
    print(f"{'size':>5} {'bs':>5} {'variant':<26} {'bare img/s':>10} {'Learner img/s':>13} {'ratio':>6} {'peak GiB (bare/Learner)':>24}")
    for r in res['train']:
        if 'error' in r: print(f"{r['size']:>5} {r['bs']:>5} {r['variant']:<26} error: {r['error']}"); continue
        mem = f"{r['bare']['peak_gib']}/{r['learner']['peak_gib']}" if r['bare']['peak_gib'] else '-'
        print(f"{r['size']:>5} {r['bs']:>5} {r['variant']:<26} {r['bare']['img_s']:>10} {r['learner']['img_s']:>13} {r['ratio']:>6} {mem:>24}")
    i = res['inference']; print(f"inference {i['size']} px bs {i['bs']}: predict_images {i['library_img_s']} img/s, bare {i['bare_img_s']}, ratio {i['ratio']}")
    shutil.rmtree(tmp, ignore_errors=True)
    if errors: sys.exit(1)

if __name__ == '__main__': main()
