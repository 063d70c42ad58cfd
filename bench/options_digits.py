#!/usr/bin/env python3
"""Compare the fine-tuning options of `clip_learner` on scikit-learn's handwritten digits, from `tiny-pretrained`, on the CPU.

`tiny-pretrained` (the small CLIP that ships with the package) was pretrained on printed glyphs only, so the
handwritten digits are a real downstream task for it. For each seed, `--n_labelled` labelled training digits
(stratified, a different draw per seed; 20% of them for validation), the rest of the 1,438 training digits as the
unlabelled pool, and three test sets of the same 359 held-out digits: as they are, inverted (dark on light) and
rotated by 30 degrees (the shifted sets, where WiSE-FT's robustness claim can show). Every variant trains the same
number of epochs (`--epochs`, warm-up + cosine, batch 16, lr `--lr`) and is scored with its best epoch's weights
(by validation accuracy), except the pseudo-label round and its control, scored with their last weights (with 10 or 20
validation images the best epoch is nearly always in the first stage, which would hide the extra stage):

- the recipe (random head), and the same from `'tiny'` (a random CLIP) at this lr and at 3e-3;
- zero-shot head; zero-shot head + WiSE-FT (alpha picked on validation; the whole alpha curve is printed too);
- LP-FT (2 of the epochs head-only); LLRD 0.65; EMA 0.9; label smoothing 0.1; TTA (horizontal flip);
- the zero-shot and the random head after a single epoch;
- the original pseudo-labelling round (test-time pool predicted above 0.9, 2 more epochs at half the lr) against a
  control that trains the same 2 more epochs on the labelled images alone.

Prints one row per run, then a Markdown table (mean and standard deviation over seeds, and the difference to the
recipe), and writes everything to `--out` as JSON.
Usage: python bench/options_digits.py [--seeds 0 1 2] [--n_labelled 50 100] [--epochs 20] [--lr 1e-3]
"""
import argparse, json, os, platform, shutil, tempfile, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from PIL import Image, ImageOps
from clip_nbdev.all import *
from clip_nbdev.datasets import digits_folder

VARIANTS = {
    'the recipe (random head)':        dict(),
    'zero-shot head':                  dict(learner=dict(head_init='zeroshot')),
    'zero-shot head + WiSE-FT':        dict(learner=dict(head_init='zeroshot'), wise=True),
    'LP-FT (2 head-only epochs)':      dict(lp=2),
    'LLRD 0.65':                       dict(learner=dict(llrd=0.65)),
    'EMA 0.9':                         dict(learner=dict(ema=0.9)),
    'label smoothing 0.1':             dict(learner=dict(label_smoothing=0.1)),
    'the recipe + TTA (flip)':         dict(tta=True),
    'control: + 2 epochs, labels only': dict(more=2, final=True),
    'the recipe + pseudo-labels (0.9, 2 epochs)': dict(pseudo=2, final=True),
    "from 'tiny' (random CLIP), same lr": dict(model='tiny'),
    "from 'tiny' (random CLIP), lr 3e-3": dict(model='tiny', lr=3e-3),
    '1 epoch only: random head':       dict(epochs=1),
    '1 epoch only: zero-shot head':    dict(epochs=1, learner=dict(head_init='zeroshot')),
}
ALPHAS = (0., 0.25, 0.5, 0.75, 1.)

def shifted_sets(digits:Path)->dict:
    "The held-out digits as they are, inverted, and rotated by 30 degrees: {name: folder}."
    res = {'test': digits/'test'}
    for name, f in [('inverted', ImageOps.invert), ('rotated', lambda im: im.rotate(30, Image.BILINEAR))]:
        d = digits/name; d.mkdir(exist_ok=True)
        for p in (digits/'test').iterdir(): f(Image.open(p).convert('L')).save(d/p.name)
        res[name] = d
    return res

def split(digits:Path, root:Path, n:int, seed:int)->tuple:
    "`n` labelled training digits (n/10 per class) under root/lab/<class>/, the others under root/unl/."
    if root.exists(): shutil.rmtree(root)
    rng = np.random.default_rng(seed)
    for c in sorted((digits/'train').iterdir()):
        files = sorted(c.iterdir()); idx = rng.permutation(len(files))
        for k, i in enumerate(idx):
            dest = root/'lab'/c.name/files[i].name if k < n // 10 else root/'unl'/files[i].name
            dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy(files[i], dest)
    return root/'lab', root/'unl'

def scores(model, vocab, sets:dict, truth:pd.Series, tta=False)->dict:
    "Accuracy of `model` on each test set."
    model.vocab, model.preprocess = list(vocab), dict(img_size=[32, 32])
    res = {}
    for name, d in sets.items():
        p = predict_folder(model, d, tta=tta, device='cpu', precision='fp32')
        res[name] = float((p.set_index('id').label == truth.reindex(p.id).values).mean())
    return res

def run(v:dict, lab:Path, unl:Path, seed:int, a, sets, truth, out:Path)->dict:
    seed_everything(seed)
    dls = clip_dls(lab, img_size=32, bs=16, seed=seed, magnitude=5)
    if out.exists(): shutil.rmtree(out)
    lr = v.get('lr', a.lr)
    learn = clip_learner(dls, v.get('model', 'tiny-pretrained'), output_dir=out, lr=lr, wd=0.05, seed=seed, progress=False, **v.get('learner', {}))
    learn.remove_cbs([o for o in learn.cbs if type(o).__name__ == 'EpochLines'])
    stages = ([LinearProbe(v['lp'], lr * 10)] if v.get('lp') else []) + [FineTune(v.get('epochs', a.epochs) - v.get('lp', 0), lr)]
    if v.get('more'):
        more = FineTune(v['more'], lr / 2); more.name = 'more'; stages.append(more)
    if v.get('pseudo'): stages.append(PseudoLabelRound(unl, v['pseudo'], lr / 2, threshold=0.9))
    with learn.no_logging(): learn.fit_recipe(Recipe(stages), checkpoint=False, verbose=False)
    if not v.get('final'): learn.load_best()
    row = {}
    if v.get('wise'):
        curve = {}
        ft = {k: t.detach().clone() for k,t in learn.model.state_dict().items()}
        for al in ALPHAS:
            learn.model.load_state_dict(wise_ft_state(learn.zeroshot_state, ft, al))
            curve[al] = scores(learn.model, dls.vocab, sets, truth)
        learn.model.load_state_dict(ft)
        learn.wise_ft_search(ALPHAS)
        row.update(wise_alpha=learn.wise_alpha, wise_curve={str(k): c for k,c in curve.items()})
    row.update(scores(learn.model, dls.vocab, sets, truth, tta=v.get('tta', False)))
    if v.get('pseudo'): row['pseudo_added'] = int(learn.pseudo_record.n_added.sum())
    return row

def table(df:pd.DataFrame, sets)->str:
    g = df.groupby(['n_labelled', 'variant'], sort=False)
    m, s = g[sets].mean(), g[sets].std()
    lines = ['| labelled | variant | ' + ' | '.join(f'{c} (mean ± sd)' for c in sets) + ' | test vs the recipe |', '|---|---|' + '---|' * (len(sets) + 1)]
    for (n, v) in m.index:
        base = m.loc[(n, 'the recipe (random head)'), 'test'] if (n, 'the recipe (random head)') in m.index else np.nan
        d = '' if v == 'the recipe (random head)' or v.startswith('zero-shot, no') else f"{100 * (m.loc[(n, v), 'test'] - base):+.1f} pp"
        lines.append(f'| {n} | {v} | ' + ' | '.join(f"{m.loc[(n, v), c]:.3f} ± {0 if np.isnan(s.loc[(n, v), c]) else s.loc[(n, v), c]:.3f}" for c in sets) + f' | {d} |')
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--n_labelled', type=int, nargs='+', default=[50, 100])
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--variants', nargs='+', default=None, help='names (default: all)')
    ap.add_argument('--out', type=Path, default=Path(__file__).parent/'results'/f'options-digits-{platform.machine()}-{time.strftime("%Y-%m-%d")}.json')
    a = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count()))
    tmp = Path(tempfile.mkdtemp())
    digits = digits_folder(tmp/'digits', words=True)
    truth = pd.read_csv(digits/'test_labels.csv', dtype=str).set_index('id').label
    sets = shifted_sets(digits)
    # zero-shot: no training, the same for every seed
    dls0 = clip_dls(digits/'train', img_size=32, bs=16)
    zs = clip_learner(dls0, 'tiny-pretrained', head_init='zeroshot', progress=False)
    rows = [dict(n_labelled=0, variant='zero-shot, no training', seed=s, **scores(zs.model, dls0.vocab, sets, truth)) for s in a.seeds]
    print(rows[0], flush=True)
    for n in a.n_labelled:
        for seed in a.seeds:
            lab, unl = split(digits, tmp/'split', n, seed)
            for name, v in VARIANTS.items():
                if a.variants and name not in a.variants: continue
                t0 = time.time()
                r = run(v, lab, unl, seed, a, sets, truth, tmp/'run')
                rows.append(dict(n_labelled=n, variant=name, seed=seed, **r, seconds=round(time.time() - t0, 1)))
                print({k: (round(x, 4) if isinstance(x, float) else x) for k,x in rows[-1].items() if k != 'wise_curve'}, flush=True)
    df = pd.DataFrame(rows)
    print(table(df, list(sets)))
    w = df.dropna(subset=['wise_alpha']) if 'wise_alpha' in df else df.iloc[:0]
    if len(w):
        print('\nWiSE-FT curve (mean over seeds):')
        for n, g in w.groupby('n_labelled'):
            for al in ALPHAS:
                print(f'| {n} | alpha {al} | ' + ' | '.join(f"{np.mean([c[str(al)][s] for c in g.wise_curve]):.3f}" for s in sets) + ' |')
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(dict(args={k: str(x) for k,x in vars(a).items()}, torch=torch.__version__, machine=platform.machine(),
                                     cpus=os.cpu_count(), rows=rows), indent=1, default=str))
    print(f'\nwritten to {a.out}')
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
