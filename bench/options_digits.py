#!/usr/bin/env python3
"""Compare the fine-tuning options of `clip_learner` on scikit-learn's digits with a tiny CLIP, on the CPU.

Every variant starts from the same tiny random CLIP checkpoint (vision and text towers, so that the
zero-shot head can be built), trains 12 epochs of warm-up + cosine (batch 32, lr 2e-3, RandAugment 5)
on the 1,438 training digits (20% of them for validation), and is scored on the 359 held-out test digits
with the best epoch's weights. A tiny CLIP trained from scratch is not a pretrained ViT-L/14: options
that protect pretrained features (LLRD, LP-FT, the zero-shot head, WiSE-FT) have nothing to protect here.

Usage: python bench/options_digits.py [--seeds 0 1] [--epochs 12]
"""
import argparse, os, tempfile, time, warnings, shutil
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from clip_nbdev.all import *
from clip_nbdev.test_utils import tiny_clip_checkpoint
from clip_nbdev.data import *
from clip_nbdev.learner import *
from clip_nbdev.predict import predict_folder

VARIANTS = {
    'baseline (the recipe)':       dict(),
    'label smoothing 0.1':         dict(learner=dict(label_smoothing=0.1)),
    'LLRD 0.65':                   dict(learner=dict(llrd=0.65)),
    'EMA 0.99':                    dict(learner=dict(ema=0.99)),
    'LP-FT (2 head-only epochs)':  dict(fit=dict(freeze_epochs=2)),
    'zero-shot head':              dict(learner=dict(head_init='zeroshot')),
    'zero-shot head + WiSE-FT':    dict(learner=dict(head_init='zeroshot'), wise=True),
    'baseline + TTA (flip)':       dict(tta=True),
}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--epochs', type=int, default=12)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    digits, ckpt = digits_folder(tmp/'digits'), tiny_clip_checkpoint(tmp/'tiny_clip')
    truth = pd.read_csv(digits/'test_labels.csv', dtype=str).set_index('id').label
    rows = []
    for seed in a.seeds:
        for name, v in VARIANTS.items():
            t0 = time.time()
            seed_everything(seed)
            dls = clip_dls(digits/'train', img_size=32, bs=32, seed=seed, magnitude=5)
            out = tmp/f'run_{seed}'
            if out.exists(): shutil.rmtree(out)
            learn = clip_learner(dls, ckpt, output_dir=out, wd=0.05, seed=seed, **v.get('learner', {}))
            zs_acc = float(learn.validate()[1]) if v.get('learner', {}).get('head_init') else float('nan')
            with learn.no_bar(), learn.no_logging(): learn.fit_warmup_cosine(a.epochs, 2e-3, **v.get('fit', {}))
            learn.load_best()
            if v.get('wise'): learn.wise_ft_search()
            learn.model.vocab, learn.model.preprocess = list(dls.vocab), dict(img_size=[32, 32])
            preds = predict_folder(learn.model, digits/'test', tta=v.get('tta', False), device='cpu', precision='fp32')
            acc = float((preds.set_index('id').label == truth.reindex(preds.id).values).mean())
            rows.append(dict(seed=seed, variant=name, heldout_acc=acc, valid_acc_step0=zs_acc, seconds=round(time.time() - t0, 1)))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print(df.pivot(index='variant', columns='seed', values='heldout_acc').round(4).to_string())
    s = df.groupby('variant', sort=False).agg(heldout_acc=('heldout_acc', 'mean'), seconds=('seconds', 'mean'))
    s['vs_baseline_pp'] = 100 * (s.heldout_acc - s.heldout_acc.iloc[0])
    print(s.round(4).to_string())
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
