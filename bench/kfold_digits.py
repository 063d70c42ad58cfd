#!/usr/bin/env python3
"""k-fold cross-validation on scikit-learn's handwritten digits, on the CPU: is the folds' mean prediction at least as
good as one fold's model, and what does the out-of-fold score say?

For each seed, `train_run(RunConfig(demo=True, folds=K, ...))` (what `clip-nbdev-train --demo --folds K` runs: the demo's recipe: tiny-pretrained with the zero-shot head, 32 px,
lr 1e-3, `--epochs` epochs, then one round of pseudo-labels for `--pseudo_epochs`, here taken from the folds' mean
prediction) on the 1,438 training digits; the 359 held-out digits and their true labels are the test set. Recorded
per seed: the out-of-fold accuracy (every training digit predicted by the fold that did not train on it), each fold's
validation and test accuracy, and the test accuracy of the folds' mean prediction (`predictions.csv`).

With `--pseudo_from ensemble fold`, each seed runs twice: pseudo-labels from the folds' mean prediction (whose other
folds' models have trained on each fold's validation digits: a leak into the out-of-fold score) and from each fold's
own model (no leak); the table compares the two out-of-fold and test accuracies.

Prints one row per seed and a Markdown table (mean and standard deviation over seeds), and writes everything to
`--out` as JSON. `--smoke` (2 folds, 1 + 1 epochs, one seed) only checks that the script runs.
Usage: python bench/kfold_digits.py [--folds 5] [--seeds 0 1 2] [--epochs 4] [--pseudo_epochs 2] [--pseudo_from ensemble fold]
"""
import argparse, json, os, platform, tempfile, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np
from clip_nbdev.config import RunConfig
from clip_nbdev.run import train_run

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--pseudo_epochs', type=int, default=2)
    ap.add_argument('--pseudo_from', nargs='+', default=['ensemble'], choices=['ensemble', 'fold'], help="where each fold's pseudo-labels come from (several: each seed runs each)")
    ap.add_argument('--smoke', action='store_true', help='2 folds, 1 + 1 epochs, seed 0: checks that the script runs')
    ap.add_argument('--out', default=None, help='JSON file (default: bench/results/kfold-digits-<date>.json; none with --smoke)')
    a = ap.parse_args()
    if a.smoke: a.folds, a.seeds, a.epochs, a.pseudo_epochs = 2, [0], 1, 1
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed, src in [(s, p) for s in a.seeds for p in a.pseudo_from]:
            t = time.time()
            s = train_run(RunConfig(demo=True, folds=a.folds, seed=seed, epochs=a.epochs, pseudo_epochs=a.pseudo_epochs, pseudo_from=src, output_dir=Path(tmp)/f'seed{seed}-{src}'), quiet=True)
            single = [f['test_accuracy'] for f in s['fold_scores']]
            r = dict(seed=seed, pseudo_from=src, oof_accuracy=s['oof_accuracy'], n_oof=s['n_oof'], ensemble_test_accuracy=s['test_accuracy'],
                     fold_test_accuracy=single, fold_test_mean=float(np.mean(single)), fold_test_best=float(np.max(single)),
                     fold_valid_accuracy=[f['best_accuracy'] for f in s['fold_scores']], pseudo_labels_added=s['pseudo_labels_added'], seconds=round(time.time() - t, 1))
            rows.append(r)
            print(f"seed {seed}, pseudo-labels from {src}: OOF {r['oof_accuracy']:.4f} ({r['n_oof']} digits); test: folds' mean prediction {r['ensemble_test_accuracy']:.4f}, "
                  f"single folds {r['fold_test_mean']:.4f} on average (best {r['fold_test_best']:.4f}, each {', '.join(f'{x:.4f}' for x in single)}); {r['seconds']:.0f} s", flush=True)
    for src in a.pseudo_from:
        rs = [r for r in rows if r['pseudo_from'] == src]
        def ms(k): v = np.array([r[k] for r in rs]); return f"{v.mean():.4f} +- {v.std():.4f}"
        print(f"\n{a.folds} folds, {len(rs)} seeds, {a.epochs} + {a.pseudo_epochs} epochs, pseudo-labels from {src}\n\n| | accuracy (mean +- sd over seeds) |\n|---|---|")
        print(f"| folds' mean prediction (test) | {ms('ensemble_test_accuracy')} |\n| one fold's model (test, mean of the folds) | {ms('fold_test_mean')} |\n"
              f"| the best fold's model (test) | {ms('fold_test_best')} |\n| out-of-fold (training digits) | {ms('oof_accuracy')} |")
        gain = [r['ensemble_test_accuracy'] - r['fold_test_mean'] for r in rs]
        print(f"\nfolds' mean - mean single fold: {np.mean(gain) * 100:+.2f} pp (each seed: {', '.join(f'{g * 100:+.2f}' for g in gain)})")
    if len(a.pseudo_from) == 2:
        d = {k: [r1[k] - r0[k] for r0, r1 in zip(*[[r for r in rows if r['pseudo_from'] == p] for p in a.pseudo_from])] for k in ('oof_accuracy', 'ensemble_test_accuracy')}
        print(f"\n{a.pseudo_from[1]} - {a.pseudo_from[0]}: out-of-fold {np.mean(d['oof_accuracy']) * 100:+.2f} pp (each seed: {', '.join(f'{g * 100:+.2f}' for g in d['oof_accuracy'])}), "
              f"test {np.mean(d['ensemble_test_accuracy']) * 100:+.2f} pp (each seed: {', '.join(f'{g * 100:+.2f}' for g in d['ensemble_test_accuracy'])})")
    print(f"{time.time() - t0:.0f} s in all")
    if not a.smoke:
        import torch
        out = Path(a.out or Path(__file__).parent/'results'/f"kfold-digits-{time.strftime('%Y-%m-%d')}.json")
        out.write_text(json.dumps(dict(args=vars(a), rows=rows, machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch=torch.__version__,
                                                                           threads=torch.get_num_threads())), indent=1))
        print(f"written to {out}")

if __name__ == '__main__': main()
