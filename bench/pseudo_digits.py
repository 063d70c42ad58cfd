#!/usr/bin/env python3
"""Semi-supervised check of pseudo-labelling on real data (scikit-learn's handwritten digits), on the CPU.

For each seed: 400 labelled training images (80 of them for validation), the other 1,038 training
images as the unlabelled folder, and the 359 images of `test/` as the held-out set with true labels.
A tiny CLIP is trained from scratch on the labelled images (stage 1); from the same stage-1 weights,
each variant then trains `--stage2_epochs` more epochs at half the lr:

- control: the labelled images alone (so a gain is not just more training);
- pseudo:  the recipe: + unlabelled images predicted above 0.9, hard labels, one round;
- flex:    + FlexMatch per-class thresholds;
- soft:    + soft labels (the probability vectors);
- rounds2: two rounds of `stage2_epochs` (re-predicting), against control2 with as many epochs.

Prints held-out accuracy of the final model per variant and seed, and the mean over seeds.
Usage: python bench/pseudo_digits.py [--seeds 0 1 2] [--stage1_epochs 30] [--stage2_epochs 4]
"""
import argparse, copy, os, tempfile, time, warnings, shutil
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from clip_nbdev.core import *
from clip_nbdev.data import *
from clip_nbdev.datasets import digits_folder
from clip_nbdev.learner import *
from clip_nbdev.recipe import *  # learn.fit_pseudo
from clip_nbdev.predict import predict_images

def split_folder(digits, root, n_labelled, seed):
    "Copy `n_labelled` random training images to root/lab/<class>/, the rest to root/unl/."
    files = find_images(digits/'train')
    idx = np.random.default_rng(seed).permutation(len(files))
    for k, i in enumerate(idx):
        f = files[i]
        dest = root/'lab'/f.parent.name/f.name if k < n_labelled else root/'unl'/f.name
        dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy(f, dest)
    return root/'lab', root/'unl'

def heldout_acc(learn, digits):
    truth = pd.read_csv(digits/'test_labels.csv', dtype=str)
    files = learn.dls.cache.add([digits/'test'/i for i in truth.id])
    probs = predict_images(learn.model, learn.dls.cache, files, device='cpu', precision='fp32')
    return float((np.array(learn.dls.vocab)[probs.argmax(1).numpy()] == truth.label.values).mean())

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--n_labelled', type=int, default=400)
    p.add_argument('--stage1_epochs', type=int, default=30)
    p.add_argument('--stage2_epochs', type=int, default=4)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--threshold', type=float, default=0.9)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    digits = digits_folder(tmp/'digits')
    rows = []
    for seed in a.seeds:
        t0 = time.time()
        lab, unl = split_folder(digits, tmp/f'seed{seed}', a.n_labelled, seed)
        seed_everything(seed)
        dls = clip_dls(lab, img_size=32, bs=a.bs, seed=seed)
        learn = clip_learner(dls, 'tiny', seed=seed)
        with learn.no_bar(), learn.no_logging(): learn.fit_warmup_cosine(a.stage1_epochs, a.lr)
        stage1 = copy.deepcopy(learn.model.state_dict())
        rows.append(dict(seed=seed, variant='stage1', heldout_acc=heldout_acc(learn, digits), added=0))
        variants = dict(control=None, pseudo=dict(), flex=dict(per_class=True), soft=dict(soft=True),
                        control2='control2', rounds2=dict(rounds=2))
        for name, kw in variants.items():
            seed_everything(seed)
            learn.model.load_state_dict(stage1); learn.opt = None
            with learn.no_bar(), learn.no_logging():
                if kw is None: learn.fit_warmup_cosine(a.stage2_epochs, a.lr / 2); added = 0
                elif kw == 'control2':
                    for _ in range(2): learn.fit_warmup_cosine(a.stage2_epochs, a.lr / 2)
                    added = 0
                else:
                    rec = learn.fit_pseudo(unl, threshold=a.threshold, n_epoch=a.stage2_epochs, lr=a.lr / 2, **kw)
                    added = int(rec[rec['round'] == rec['round'].max()].n_added.sum())
            rows.append(dict(seed=seed, variant=name, heldout_acc=heldout_acc(learn, digits), added=added))
            print(rows[-1], flush=True)
        print(f'seed {seed}: {time.time() - t0:.0f} s', flush=True)
    df = pd.DataFrame(rows)
    summary = df.groupby('variant', sort=False).agg(heldout_acc=('heldout_acc', 'mean'), std=('heldout_acc', 'std'), added=('added', 'mean'))
    summary['gain_vs_control_pp'] = 100 * (summary.heldout_acc - summary.heldout_acc['control'])
    summary.loc['rounds2', 'gain_vs_control_pp'] = 100 * (summary.heldout_acc['rounds2'] - summary.heldout_acc['control2'])
    print(df.pivot(index='variant', columns='seed', values='heldout_acc').round(4).to_string())
    print(summary.round(4).to_string())
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
