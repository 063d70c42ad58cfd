#!/usr/bin/env python3
"""Images/s of `clip_learner(...).fit` on a folder of JPEGs against a plain PyTorch loop over pre-decoded tensors, on the CPU.

Both train the same tiny CLIP ('tiny', random) at the same size and batch size with the same optimizer
(torch.optim.AdamW) and a constant lr, in the same process. The plain loop gets the images already decoded,
as one uint8 tensor, and does no augmentation; the Learner reads the JPEG folder (decoded once into the
cache during the first epoch's set-up) and is timed with and without RandAugment. Prediction is compared
the same way. Ratios are Learner / plain loop; epoch 1 of the Learner includes decoding the folder.

Usage: python bench/cpu_pipeline.py [--n 2000] [--sz 64] [--bs 64] [--epochs 2] [--threads N]
"""
import argparse, os, tempfile, time, warnings, shutil, json, platform
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, torch
from PIL import Image
from fastai.basics import Callback
from clip_nbdev.core import *
from clip_nbdev.data import *
from clip_nbdev.model import clip_classifier
from clip_nbdev.learner import *
from clip_nbdev.predict import predict_images

class EpochTimer(Callback):
    "Wall time of each training phase (not validation)."
    def before_fit(self): self.times = []
    def before_train(self): self.t = time.perf_counter()
    def after_train(self): self.times.append(time.perf_counter() - self.t)

def make_folder(path, n, sz, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, 256, (n_classes, 3))
    for i in range(n):
        c = i % n_classes
        d = path/'train'/f'class_{c}'; d.mkdir(parents=True, exist_ok=True)
        a = np.clip(cols[c] + rng.normal(0, 40, (sz, sz, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(d/f'{i:06d}.jpg', quality=90)
    return path

def plain_loop(x_u8, y, sz, bs, epochs, lr):
    "The bar: a bare PyTorch loop over a pre-decoded uint8 tensor, no augmentation."
    seed_everything(0)
    model = clip_classifier('tiny', int(y.max()) + 1, img_size=sz)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y) - bs + 1, bs):  # drop_last, as fastai's training DataLoader
            idx = perm[i:i+bs]
            xb = (x_u8[idx].permute(0, 3, 1, 2).float().div_(255) - mean) / std
            loss = torch.nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t)
    return times, model

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--sz', type=int, default=64)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp())
    make_folder(tmp, a.n, a.sz)
    lr, res = 1e-3, {}
    # the Learner, from the JPEG folder; epoch 1 includes decoding the folder into the cache
    for name, n_ops in (('learner_randaugment', 2), ('learner_no_aug', 0)):
        seed_everything(0)
        t0 = time.perf_counter()
        dls = clip_dls(tmp/'train', img_size=a.sz, bs=a.bs, valid_pct=0.1, n_ops=n_ops, seed=0)
        t_decode = time.perf_counter() - t0
        learn = clip_learner(dls, 'tiny', lr=lr, cbs=EpochTimer())
        with learn.no_bar(), learn.no_logging(): learn.fit(a.epochs, lr)
        n_train = len(dls.train) * a.bs
        ts = learn.epoch_timer.times
        res[name] = dict(first_epoch_cold_img_s=n_train / (ts[0] + t_decode), later_epochs_img_s=n_train / np.mean(ts[1:] or ts), decode_s=t_decode)
    cache, files = dls.cache, dls.train.items
    x = torch.from_numpy(np.stack([cache[f] for f in files]))
    y = torch.tensor([dls.vocab.o2i[f.parent.name] for f in files])
    ts, model = plain_loop(x, y, a.sz, a.bs, a.epochs, lr)
    n_plain = (len(y) // a.bs) * a.bs
    res['plain_loop'] = dict(later_epochs_img_s=n_plain / np.mean(ts[1:] or ts))
    # prediction: predict_images (the library's path) against a bare no_grad loop
    model.eval()
    t = time.perf_counter(); predict_images(model, cache, files, bs=256, device='cpu', precision='fp32', progress=False); t_pred = time.perf_counter() - t
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), 256): model((x[i:i+256].permute(0, 3, 1, 2).float() / 255 - mean) / std).softmax(-1)
    t_bare = time.perf_counter() - t
    res['predict'] = dict(library_img_s=len(files) / t_pred, plain_img_s=len(files) / t_bare, ratio=t_bare / t_pred)
    bar = res['plain_loop']['later_epochs_img_s']
    for k in ('learner_randaugment', 'learner_no_aug'):
        res[k]['ratio_later_epochs'] = res[k]['later_epochs_img_s'] / bar
        res[k]['ratio_first_epoch'] = res[k]['first_epoch_cold_img_s'] / bar
    res['setup'] = dict(n_images=a.n, sz=a.sz, bs=a.bs, epochs=a.epochs, threads=torch.get_num_threads(), machine=platform.processor() or platform.machine(),
                        torch=torch.__version__)
    print(json.dumps(res, indent=1))
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
