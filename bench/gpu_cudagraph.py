#!/usr/bin/env python3
"""The eager Learner against the Learner with `cuda_graph=True` (the whole training step as one replayed CUDA graph), in one process.

Both train the CLIP ViT-L/14 vision tower (random init, no download; as in `bench/gpu.py`) from a generated
folder of JPEGs through `clip_dls` and `clip_learner(precision='bf16')`, at 64 px batch 8 and 64 and 224 px
batch 8 and 32, timed over the same steps after the same warm-up (which includes the graph's warm-up and
capture). Then the same seed in both modes for `--traj_steps` steps: the loss at every step, and the
validation accuracy after them.

    python bench/gpu_cudagraph.py            # on a GPU: writes bench/results/gpu-cudagraph-<gpu>-<date>.json (or $OUT/gpu_cudagraph.json)
    python bench/gpu_cudagraph.py --smoke    # anywhere: a small ViT; on a CPU the graph path runs simulated (no capture)
"""
import argparse, json, os, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from gpu import *  # DEV, sync, vit_checkpoint, make_folder, learner_train, StepTimer
from gpu import DEV
import numpy as np, torch
from fastai.basics import Callback, CancelFitException
from clip_nbdev.core import seed_everything
from clip_nbdev.data import ImageCache, clip_dls, find_images
from clip_nbdev.learner import clip_learner
from clip_nbdev.speed import CudaGraphStep

def graph_kwargs(smoke):
    "How to turn the graph on: clip_learner's flag on CUDA; off CUDA (--smoke) the simulated step."
    return dict(cuda_graph=True) if DEV.type == 'cuda' else dict(cbs=[CudaGraphStep(simulate=True)])

class LossTrace(Callback):
    "The training loss of each of the first `n` steps, then stop."
    order = 100
    def __init__(self, n): self.n = n
    def before_fit(self): self.losses = []
    def after_batch(self):
        if not self.training: return
        self.losses.append(self.learn.loss.item())
        if len(self.losses) == self.n: raise CancelFitException

def trajectory(ckpt, folder, cache, sz, bs, n, **kw):
    "Losses of `n` steps from seed 0, and the validation accuracy after them."
    seed_everything(0)
    dls = clip_dls(folder, img_size=sz, bs=bs, valid_pct=0.1, cache=cache, seed=0)
    if len(dls.train) < n: raise ValueError(f"{len(dls.train)} batches: need {n}")
    tr = LossTrace(n)
    learn = clip_learner(dls, ckpt, lr=2e-5, precision='bf16' if DEV.type == 'cuda' else 'fp32', cbs=[tr] + kw.pop('cbs', []), **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 2e-5)
    losses = list(tr.losses)  # validate() fires before_fit too
    with learn.no_bar(): acc = float(learn.validate()[1])
    return losses, acc, getattr(learn, 'cuda_graph_step', None)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--points', default='64:8,64:64,224:8,224:32')
    ap.add_argument('--warm', type=int, default=8, help='untimed steps (the graph warms up for 3 and captures on the 4th)')
    ap.add_argument('--steps', type=int, default=40)
    ap.add_argument('--traj', default='64:64', help='size:batch of the loss trajectory')
    ap.add_argument('--traj_steps', type=int, default=50)
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    if a.smoke: a.points, a.traj, a.warm, a.steps, a.traj_steps = '32:8,32:32', '32:8', 5, 4, 12
    pts = lambda s: [tuple(map(int, p.split(':'))) for p in s.split(',') if p]
    if DEV.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True
    tmp, t0 = Path(tempfile.mkdtemp()), time.time()
    device = torch.cuda.get_device_name() if DEV.type == 'cuda' else 'CPU (graph simulated)'
    res = dict(device=device, date=time.strftime('%Y-%m-%d'), torch=torch.__version__, smoke=a.smoke, warm=a.warm, steps=a.steps, runs=[])
    out = Path(a.out) if a.out else None if a.smoke else (Path(os.environ['OUT'])/'gpu_cudagraph.json' if os.environ.get('OUT') else
           Path(__file__).parent/'results'/f"gpu-cudagraph-{device.split('(')[0].strip().replace(' ', '-')}-{res['date']}.json")
    def save():  # after every measurement: a run cut short by its time limit keeps what it measured
        if out: out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1))
    ckpt = vit_checkpoint(tmp/'vit', a.smoke)
    folders, caches = {}, {}
    for sz in sorted({sz for sz,_ in pts(a.points) + pts(a.traj)}):
        n = max(bs for s,bs in pts(a.points) + pts(a.traj) if s == sz) * max(a.warm + a.steps, a.traj_steps) * 12 // 10 + 64
        folders[sz] = make_folder(tmp/f'jpg{sz}', n, sz); caches[sz] = ImageCache((sz, sz)); caches[sz].add(find_images(folders[sz]), progress=False)
    for sz, bs in pts(a.points):
        row = dict(size=sz, bs=bs)
        try:
            row['eager'] = learner_train(ckpt, folders[sz], caches[sz], sz, bs, a.warm, a.steps)
            row['graph'] = learner_train(ckpt, folders[sz], caches[sz], sz, bs, a.warm, a.steps, **graph_kwargs(a.smoke))
            row['speedup'] = round(row['graph']['img_s'] / row['eager']['img_s'], 2)
        except Exception as e: row['error'] = f'{type(e).__name__}: {str(e)[:300]}'
        res['runs'].append(row); print(json.dumps(row), flush=True); save()
    (sz, bs), = pts(a.traj)
    le, acc_e, _ = trajectory(ckpt, folders[sz], caches[sz], sz, bs, a.traj_steps)
    lg, acc_g, cg = trajectory(ckpt, folders[sz], caches[sz], sz, bs, a.traj_steps, **graph_kwargs(a.smoke))
    diff = np.abs(np.array(le) - np.array(lg))
    res['trajectory'] = dict(size=sz, bs=bs, steps=a.traj_steps, loss_eager=le, loss_graph=lg, max_abs_diff=float(diff.max()),
                             final_loss=[le[-1], lg[-1]], valid_accuracy=[acc_e, acc_g], replays=cg.n_replays if cg else None)
    res['total_s'] = round(time.time() - t0, 1)
    save(); print('wrote', out) if out else None
    print(f"{'size':>5} {'bs':>4} {'eager img/s':>12} {'graph img/s':>12} {'speed-up':>9}")
    for r in res['runs']:
        if 'error' in r: print(f"{r['size']:>5} {r['bs']:>4} error: {r['error']}"); continue
        print(f"{r['size']:>5} {r['bs']:>4} {r['eager']['img_s']:>12} {r['graph']['img_s']:>12} {r['speedup']:>9}")
    t = res['trajectory']
    print(f"{t['steps']} steps at {t['size']} px batch {t['bs']}: loss eager {t['final_loss'][0]:.4f}, graph {t['final_loss'][1]:.4f}, "
          f"largest step difference {t['max_abs_diff']:.4f}; validation accuracy {t['valid_accuracy'][0]:.3f} / {t['valid_accuracy'][1]:.3f}; {t['replays']} replays")
    shutil.rmtree(tmp, ignore_errors=True)
    if any('error' in r for r in res['runs']) or not t['replays']: sys.exit(1)

if __name__ == '__main__': main()
