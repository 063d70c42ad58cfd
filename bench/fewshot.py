#!/usr/bin/env python3
"""Few labels: every few-shot method against zero-shot and fine-tuning, at k = 1, 2, 4, 8, 16 (...) labelled images per class.

For each k and seed, k labelled images of each class are drawn (the rest are the test set, their labels known) from
scikit-learn's digits (`--folder`: any folder of `<class>/` sub-folders). The frozen features of every image are
computed once (`clip_nbdev.fewshot.image_features`); then each method is scored on the test images:

- zeroshot, linear, zeroshot_probe, tip_adapter, tip_adapter_f: the heads of `clip_nbdev.fewshot` on the frozen features
  (wall time: the head's fit alone, the features being computed once before);
- finetune_old: `train_run` with the settings the run chose before few-shot defaults existed: the model's lr
  (`MODEL_DEFAULTS`), its head_init, random flips and crops of half the area, 4 epochs, a 20% validation split;
- finetune_noaug: the same without flips and crops;
- default: `train_run` with nothing but the data, the model and the image size: what a user gets
  (`clip-nbdev-train --train_dir ... --test_dir ... --model_name M --img_size S S`).

Prints a Markdown table (test accuracy, mean +- sd over seeds, and seconds per method) and writes every run to
`--out` as JSON. `--smoke` (k = 2, one seed, every method) only checks that the script runs.
Usage: python bench/fewshot.py [--ks 1 2 4 8 16] [--seeds 0 1 2] [--methods ...] [--model tiny-pretrained] [--img_size 32] [--folder F]
"""
import argparse, json, os, platform, shutil, tempfile, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from clip_nbdev.core import UserError
from clip_nbdev.config import RunConfig, MODEL_DEFAULTS, RECIPE_DEFAULTS
from clip_nbdev.data import ImageCache, class_folder_items
from clip_nbdev.datasets import digits_folder
from clip_nbdev.model import clip_classifier
from clip_nbdev.zeroshot import zeroshot_head
from clip_nbdev.fewshot import FeatureCache, image_features, fewshot_head, FEWSHOT_METHODS
from clip_nbdev.run import train_run

HEADS = list(FEWSHOT_METHODS)
RUNS = ['finetune_old', 'finetune_noaug', 'default']

def split(files, labels, k:int, seed:int, root:Path)->Path:
    "A folder of k labelled images per class (`train/<class>/`, links) and every other image (`test/`, `test_labels.csv`)."
    rng, rows = np.random.default_rng(seed), []
    for c in sorted(set(labels.values())):
        fs = sorted(f for f in files if labels[f] == c)
        pick = set(rng.choice(len(fs), min(k, len(fs) - 1), replace=False).tolist())
        for i, f in enumerate(fs):
            dst = root/'train'/c/f.name if i in pick else root/'test'/f"{c}__{f.name}"
            dst.parent.mkdir(parents=True, exist_ok=True); os.symlink(f.resolve(), dst)
            if i not in pick: rows.append((dst.name, c))
    pd.DataFrame(rows, columns=['id', 'label']).to_csv(root/'test_labels.csv', index=False)
    return root

def test_accuracy(preds:pd.DataFrame, root:Path)->float:
    truth = pd.read_csv(root/'test_labels.csv', dtype=str).set_index('id').label
    return float((preds.set_index('id').label.astype(str) == truth.reindex(preds.id).values).mean())

def run_method(m:str, root:Path, a, out:Path)->float:
    d = MODEL_DEFAULTS.get(a.model, RECIPE_DEFAULTS)
    kw = dict(train_dir=str(root/'train'), test_dir=str(root/'test'), model_name=a.model, img_size=(a.img_size, a.img_size), output_dir=str(out), report=False, seed=a.run_seed)
    if m == 'finetune_old': kw.update(lr=d['lr'], head_init=d['head_init'], flip=True, crop=0.5, fewshot='off')
    if m == 'finetune_noaug': kw.update(lr=d['lr'], head_init=d['head_init'], flip=False, crop=1., fewshot='off')
    train_run(RunConfig(**kw), quiet=True)
    return test_accuracy(pd.read_csv(out/'predictions.csv', dtype=str), root)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ks', type=int, nargs='+', default=[1, 2, 4, 8, 16])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--methods', nargs='+', default=HEADS + RUNS, choices=HEADS + RUNS)
    ap.add_argument('--model', default='tiny-pretrained')
    ap.add_argument('--img_size', type=int, default=32)
    ap.add_argument('--folder', default=None, help='a folder of <class>/ sub-folders (default: the digits, classes named zero ... nine)')
    ap.add_argument('--run_seed', type=int, default=42, help="the training runs' --seed (their split and augmentation)")
    ap.add_argument('--smoke', action='store_true', help='k = 2, seed 0, every method: checks that the script runs')
    ap.add_argument('--out', default=None, help='JSON file (default: bench/results/fewshot-<model>-<date>.json; none with --smoke)')
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    if a.smoke: a.ks, a.seeds = [2], [0]
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = Path(a.folder) if a.folder else digits_folder(tmp/'digits', test_pct=0., words=True)/'train'
        files, labels = class_folder_items(src)
        vocab = sorted(set(labels.values()))
        y_all = torch.tensor([vocab.index(labels[f]) for f in files])
        t = time.time()
        cache = ImageCache((a.img_size, a.img_size)); cache.add(files)
        model = clip_classifier(a.model, len(vocab), img_size=a.img_size)
        try: zeroshot_head(model, a.model, vocab)
        except UserError: print(f"{a.model} has no text tower: no zero-shot head, its methods skipped")
        X_all = image_features(model, cache, files, store=FeatureCache())
        t_feat = time.time() - t
        print(f"{len(files)} images, {len(vocab)} classes; features of {a.model} at {a.img_size} px in {t_feat:.1f} s (decoding included)", flush=True)
        index = {f.resolve(): i for i, f in enumerate(files)}
        for k in a.ks:
            for seed in a.seeds:
                root = split(files, labels, k, seed, tmp/f'k{k}-s{seed}')
                tr = [index[p.resolve()] for p in sorted((root/'train').rglob('*')) if p.is_file()]
                te = [index[p.resolve()] for p in sorted((root/'test').iterdir())]
                Xt, yt, Xe, ye = X_all[tr], y_all[tr], X_all[te], y_all[te]
                for m in a.methods:
                    t = time.time()
                    if m in HEADS:
                        if m != 'linear' and not model.normalize: continue
                        with torch.no_grad(): acc = float((fewshot_head(m, Xt, yt, model.head)(Xe).argmax(1) == ye).float().mean())
                    else: acc = run_method(m, root, a, tmp/f'run-{m}-k{k}-s{seed}')
                    r = dict(k=k, seed=seed, method=m, test_accuracy=acc, n_test=len(te), seconds=round(time.time() - t, 2))
                    rows.append(r)
                    print(f"k {k:3d} seed {seed} {m:15s} test accuracy {acc:.4f} ({r['seconds']:.1f} s)", flush=True)
                shutil.rmtree(root)
    df = pd.DataFrame(rows)
    g = df.groupby(['method', 'k']).test_accuracy
    tab = (g.mean().map('{:.3f}'.format) + ' +- ' + g.std(ddof=0).map('{:.3f}'.format)).unstack('k').reindex([m for m in a.methods if m in set(df.method)])
    secs = df.groupby('method').seconds.mean().reindex(tab.index).map('{:.1f}'.format)
    print(f"\n{a.model} at {a.img_size} px, test accuracy (mean +- sd over {len(a.seeds)} seeds) by labelled images per class\n")
    print('| method | ' + ' | '.join(f'k={k}' for k in tab.columns) + ' | s per fit |\n|---|' + '---|' * (len(tab.columns) + 1))
    for m, row in tab.iterrows(): print(f"| {m} | " + ' | '.join(row.values) + f" | {secs[m]} |")
    if not a.smoke:
        out = Path(a.out or f"bench/results/fewshot-{a.model.replace('/', '_')}-{time.strftime('%Y-%m-%d')}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(model=a.model, img_size=a.img_size, folder=a.folder or 'digits', ks=a.ks, seeds=a.seeds, n_images=len(files), feature_seconds=round(t_feat, 2),
                                       machine=f"{platform.machine()}, {os.cpu_count()} cpus, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", torch=torch.__version__,
                                       wall_s=round(time.time() - t0, 1), rows=rows), indent=1))
        print(f"\nwrote {out}")

if __name__ == '__main__': main()
