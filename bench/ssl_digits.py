#!/usr/bin/env python3
"""Semi-supervised stages (FixMatch, FlexMatch, FreeMatch) against the equal-epoch control and the original offline
pseudo-label round, on scikit-learn's handwritten digits, on the CPU.

For each seed: `--n_labelled` labelled training digits (a tenth per class, a different draw per seed; 20% of them for
validation), the other training digits as the unlabelled pool (1,038 with 400 labels), and the 359 held-out digits
with their true labels as the test set. Every method trains `2 x --epochs` epochs (warm-up + cosine per stage,
batch 16, the library's RandAugment, no flip and no crop: a flipped 2 is not a 2):

- control: `--epochs` x 2 on the labelled images alone (one stage);
- control_steps: `--epochs`, then the SSL stage with its unlabelled loss weighted 0: the same steps on the same labelled
  batches as the SSL stage (with `--ssl_epoch unlabelled`, many more steps than the control);
- offline: `--epochs`, then the recipe's pseudo-label round (test pool predicted above 0.9) for `--epochs`;
- fixmatch / flexmatch / freematch: `--epochs`, then an `SSLStage` of `--epochs` (mu `--mu`), each epoch a pass over the
  labelled images (`--ssl_epoch labelled`, a few steps when there are few labels) or over the unlabelled pool
  (`--ssl_epoch unlabelled`: the labelled batches cycled, as many steps as the offline round takes).

Each is scored on the test set twice: with the model the command would write (`keep='best'`: the best validation
accuracy, ties to the lower validation loss and then the later epoch) and with the last weights. The mask rate and
the pseudo-labels' accuracy of the last SSL epoch are recorded too. `--cost` first measures the labelled images per
second of one supervised epoch and one SSL epoch (mu 1) of the same learner, in this process.

Prints one row per run and a Markdown table (mean and standard deviation over seeds, difference to the control), and
writes everything to `--out` as JSON.
Usage: python bench/ssl_digits.py --model tiny-pretrained --n_labelled 400 --epochs 10 [--seeds 0 1 2] [--cost]
"""
import argparse, json, os, platform, shutil, tempfile, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from fastcore.all import first, risinstance
from clip_nbdev.all import *
from clip_nbdev.datasets import digits_folder

METHODS = ('control', 'control_steps', 'offline', 'fixmatch', 'flexmatch', 'freematch')

def split(digits:Path, root:Path, n:int, seed:int)->tuple:
    "`n` labelled training digits (n/10 per class) under root/lab/<class>/, the others under root/unl/; the unlabelled ones' true classes."
    if root.exists(): shutil.rmtree(root)
    rng, truth = np.random.default_rng(seed), {}
    for c in sorted((digits/'train').iterdir()):
        files = sorted(c.iterdir()); idx = rng.permutation(len(files))
        for k, i in enumerate(idx):
            dest = root/'lab'/c.name/files[i].name if k < n // 10 else root/'unl'/files[i].name
            if k >= n // 10: truth[files[i].name] = c.name
            dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy(files[i], dest)
    return root/'lab', root/'unl', truth

def make_learner(a, lab:Path, seed:int, out:Path):
    seed_everything(seed)
    dls = clip_dls(lab, img_size=32, bs=16, seed=seed)
    if out.exists(): shutil.rmtree(out)
    learn = clip_learner(dls, a.model, output_dir=out, lr=a.lr, seed=seed, progress=False,
                         head_init='zeroshot' if a.model == 'tiny-pretrained' else 'random')
    learn.remove_cbs([o for o in learn.cbs if type(o).__name__ == 'EpochLines'])
    return learn

def accuracy_on(learn, test_dir:Path, truth:pd.Series)->float:
    tdl = clip_test_dl(learn.dls, test_dir, bs=128)
    probs, _ = learn.get_preds(dl=tdl)
    pred = [learn.dls.vocab[i] for i in probs.argmax(1).tolist()]
    return float(np.mean([p == truth[Path(f).name] for p, f in zip(pred, tdl.items)]))

def run(method:str, a, lab:Path, unl:Path, unl_truth:dict, seed:int, test_dir:Path, truth:pd.Series, out:Path)->dict:
    learn = make_learner(a, lab, seed, out)
    E = a.epochs
    ssl = lambda algo, lam=1.: SSLStage(unl, E, a.lr, algo=algo, mu=a.mu, threshold=a.threshold, lam=lam, truth=unl_truth, seed=seed, epoch=a.ssl_epoch)
    stages = {'control': [FineTune(2 * E)],
              'control_steps': [FineTune(E), ssl('fixmatch', lam=0.)],  # the SSL stage's steps and labelled batches, without its unlabelled loss
              'offline': [FineTune(E), PseudoLabelRound(unl, E, a.lr, threshold=0.9)]}.get(method) or [FineTune(E), ssl(method)]
    with learn.no_logging(): learn.fit_recipe(Recipe(stages), checkpoint=False, verbose=False)
    row = dict(acc_last=accuracy_on(learn, test_dir, truth))
    best = first(learn.cbs, risinstance(SaveBestModel))
    learn.load_best()
    row.update(acc_kept=accuracy_on(learn, test_dir, truth), kept_stage=best.best_stage, kept_epoch=best.best_epoch)
    if learn.ssl_rows: row.update(mask_rate=learn.ssl_rows[-1]['mask_rate'], pseudo_acc=learn.ssl_rows[-1]['pseudo_acc'])
    if method == 'offline': row['pseudo_added'] = int(learn.pseudo_record.n_added.sum())
    return row

def cost(a, lab:Path, unl:Path, tmp:Path)->dict:
    "Labelled images per second of a supervised epoch and of an SSL epoch with mu 1 (and `--mu`), same learner, this process."
    learn = make_learner(a, lab, 0, tmp/'cost')
    learn.logger = lambda *args: None
    learn.fit(1)  # warm-up
    res = {}
    for name, cbs in [('supervised', []), ('ssl mu 1', lambda: [SSLCallback(learn.dls.cache.add(find_images(unl)), 'fixmatch', mu=1)]),
                      (f'ssl mu {a.mu}', lambda: [SSLCallback(learn.dls.cache.add(find_images(unl)), 'fixmatch', mu=a.mu)])]:
        t = time.time(); learn.fit(2, cbs=cbs() if callable(cbs) else cbs); dt = time.time() - t
        res[name] = round(2 * len(learn.dls.train) * learn.dls.bs / dt, 1)
    res = {k: dict(labelled_images_per_s=v, ratio_to_supervised=round(v / res['supervised'], 3)) for k,v in res.items()}
    print('cost (labelled images/s, 2 epochs incl. validation):', res, flush=True)
    return res

def table(df:pd.DataFrame)->str:
    lines = ['| method | test acc, kept model (mean ± sd) | vs control | test acc, last weights | vs control | kept from stage | mask rate | pseudo-label acc |', '|---|---|---|---|---|---|---|---|']
    g = df.groupby('method', sort=False)
    base_k, base_l = g.acc_kept.mean()['control'], g.acc_last.mean()['control']
    for m, x in g:
        ssl = 'mask_rate' in x and x.mask_rate.notna().any() and m != 'control_steps'
        lines.append(f"| {m} | {x.acc_kept.mean():.3f} ± {x.acc_kept.std():.3f} | {100 * (x.acc_kept.mean() - base_k):+.1f} pp | {x.acc_last.mean():.3f} ± {x.acc_last.std():.3f} | "
                     f"{100 * (x.acc_last.mean() - base_l):+.1f} pp | {', '.join(x.kept_stage)} | {x.mask_rate.mean():.2f} | {x.pseudo_acc.mean():.3f} |" if ssl else
                     f"| {m} | {x.acc_kept.mean():.3f} ± {x.acc_kept.std():.3f} | {100 * (x.acc_kept.mean() - base_k):+.1f} pp | {x.acc_last.mean():.3f} ± {x.acc_last.std():.3f} | "
                     f"{100 * (x.acc_last.mean() - base_l):+.1f} pp | {', '.join(x.kept_stage)} | | |")
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='tiny-pretrained', help="'tiny-pretrained' (zero-shot head) or 'tiny' (a random CLIP)")
    ap.add_argument('--n_labelled', type=int, default=400)
    ap.add_argument('--epochs', type=int, default=10, help='epochs of each of the two stages (the control trains twice as many in one)')
    ap.add_argument('--lr', type=float, default=None, help='default 1e-3 (tiny-pretrained) or 3e-3 (tiny)')
    ap.add_argument('--mu', type=int, default=2)
    ap.add_argument('--threshold', type=float, default=0.95)
    ap.add_argument('--ssl_epoch', default='unlabelled', choices=['labelled', 'unlabelled'], help="what an SSL epoch passes over (the offline round's epochs pass over the pool)")
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--methods', nargs='+', default=list(METHODS))
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--cost', action='store_true', help='first measure the per-epoch cost of the SSL stage')
    ap.add_argument('--smoke', action='store_true', help='1 seed, 100 labels, 1 epoch per stage, every method: checks that it runs')
    ap.add_argument('--out', type=Path, default=None)
    a = ap.parse_args()
    if a.smoke: a.seeds, a.n_labelled, a.epochs, a.mu = [0], 100, 1, 1
    a.lr = a.lr or (3e-3 if a.model == 'tiny' else 1e-3)
    a.out = a.out or Path(__file__).parent/'results'/f'ssl-digits-{a.model}-{a.n_labelled}{"-per-unlabelled" if a.ssl_epoch == "unlabelled" else ""}-{platform.machine()}-{time.strftime("%Y-%m-%d")}.json'
    if a.threads: torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp())
    digits = digits_folder(tmp/'digits', words=True)
    truth = pd.read_csv(digits/'test_labels.csv', dtype=str).set_index('id').label
    rows, res_cost = [], None
    for seed in a.seeds:
        lab, unl, unl_truth = split(digits, tmp/'split', a.n_labelled, seed)
        if a.cost and res_cost is None: res_cost = cost(a, lab, unl, tmp)
        for m in a.methods:
            t0 = time.time()
            r = run(m, a, lab, unl, unl_truth, seed, digits/'test', truth, tmp/'run')
            rows.append(dict(model=a.model, n_labelled=a.n_labelled, epochs=a.epochs, ssl_epoch=a.ssl_epoch, method=m, seed=seed, **r, seconds=round(time.time() - t0, 1)))
            print({k: (round(x, 4) if isinstance(x, float) else x) for k,x in rows[-1].items()}, flush=True)
    df = pd.DataFrame(rows)
    print(table(df))
    if not a.smoke:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(dict(args={k: str(x) for k,x in vars(a).items()}, torch=torch.__version__, machine=platform.machine(),
                                         cpus=os.cpu_count(), cost=res_cost, rows=rows), indent=1, default=str))
        print(f'\nwritten to {a.out}')
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
