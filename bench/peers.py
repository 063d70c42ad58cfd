#!/usr/bin/env python3
"""clip_nbdev against the tool a user would pick instead: Hugging Face transformers' `Trainer`, same model, data, schedule and threads.

Each side runs as its own process (the whole command is timed, imports included), alternated A B A B ... for `--runs`:

- clip_nbdev: the real command, `clip-nbdev-train --train_dir ... --test_dir ... --head_init random --ra_magnitude 0 --no_flip
  --crop 1` (no augmentation), batch, epochs, lr, warm-up as below; its `summary.json` gives the training time (the
  recipe's fit, per-epoch validation and best-model saving included) and images seen; `predictions.csv` the test accuracy.
- transformers: `python bench/peers.py --side trainer --spec spec.json`: `CLIPForImageClassification.from_pretrained(<the
  same folder>, num_labels=n)` (a new head, as clip_nbdev's), a torch `Dataset` that opens each image with PIL per item
  (RGB, bilinear resize, CLIP normalisation: what clip_nbdev's cache does once), `TrainingArguments` with AdamW, the same
  lr, weight decay, warm-up share and cosine, an evaluation each epoch and the best model (validation accuracy) kept, as
  clip_nbdev keeps it; then `trainer.predict` on the test images into a CSV.

Both sides: the same train/validation split (clip_nbdev's own splitter, computed here and handed to the peer), the same
seed, `OMP_NUM_THREADS` threads (`--threads`, default 1). Data: scikit-learn's digits (`clip_nbdev.datasets.digits_folder`,
`--n_labelled` labelled images, 20% of them for validation, the other digits held out as the test set), or any folder
laid out the same way (`--folder`: `train/<class>/`, `test/` and `test_labels.csv`).

Prints a table and the ratios clip_nbdev / Trainer (training images/s, whole command, test accuracy), and writes every
run, the settings, the machine and the versions to `--out` (default `bench/results/peers_<device>_<date>.json`).
`--smoke`: 2 epochs, 100 labelled images, 1 run, nothing written unless `--out` is given.
On a GPU: `--device cuda --img_size 64 --model vit-b-random --bs 8 256 1024` (a ViT-B/16-sized CLIP, random weights, bf16
on both sides); on the CPU, `--smoke --model vit-b-random` runs the same path with a tiny config.
Usage: python bench/peers.py [--runs 2] [--epochs 10] [--bs 32] [--smoke] [--note '...']
"""
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# --------------------------------------------------------------------------------------------------- the peer's side
def trainer_side(spec:dict)->dict:
    "Fine-tune with transformers' `Trainer` as `spec` says; returns the timings (this runs in its own process)."
    t_import = time.perf_counter()
    import numpy as np, torch
    torch.set_num_threads(spec['threads'])
    from PIL import Image
    from transformers import CLIPForImageClassification, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging
    from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    t_import = time.perf_counter() - t_import
    vocab, sz = spec['vocab'], spec['img_size']
    mean, std = torch.tensor(OPENAI_CLIP_MEAN).view(3, 1, 1), torch.tensor(OPENAI_CLIP_STD).view(3, 1, 1)

    class Images(torch.utils.data.Dataset):
        "Open, convert, resize and normalise each image when it is asked for."
        def __init__(self, files, labels=None): self.files, self.labels = files, labels
        def __len__(self): return len(self.files)
        def __getitem__(self, i):
            im = Image.open(self.files[i]).convert('RGB').resize((sz, sz), Image.BILINEAR)
            x = (torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255 - mean) / std
            d = {'pixel_values': x}
            if self.labels is not None: d['labels'] = vocab.index(self.labels[i])
            return d

    train = Images(*zip(*spec['train'])); valid = Images(*zip(*spec['valid']))
    test = Images(spec['test']) if spec['test'] else None
    torch.manual_seed(spec['seed'])
    model = CLIPForImageClassification.from_pretrained(spec['model_dir'], num_labels=len(vocab), ignore_mismatched_sizes=True)
    def metrics(p): return {'accuracy': float((np.argmax(p.predictions, -1) == p.label_ids).mean())}
    bf16 = spec['precision'] == 'bf16'
    args = TrainingArguments(output_dir=spec['out'], num_train_epochs=spec['epochs'], per_device_train_batch_size=spec['bs'],
                             per_device_eval_batch_size=spec['bs'] * 2, learning_rate=spec['lr'], weight_decay=spec['wd'],
                             warmup_steps=spec['warmup_pct'], lr_scheduler_type='cosine', optim='adamw_torch_fused' if spec['device'] == 'cuda' else 'adamw_torch',
                             eval_strategy='epoch', save_strategy='epoch', save_total_limit=1, load_best_model_at_end=True,
                             metric_for_best_model='accuracy', logging_strategy='epoch', report_to=[], seed=spec['seed'], data_seed=spec['seed'],
                             dataloader_num_workers=0, use_cpu=spec['device'] == 'cpu', bf16=bf16, disable_tqdm=True, save_only_model=False)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=valid, compute_metrics=metrics)
    t = time.perf_counter()
    trainer.train()
    t_train = time.perf_counter() - t
    trainer.save_model(str(Path(spec['out'])/'best_model'))
    if test is not None:
        p = trainer.predict(test).predictions.argmax(-1)
        with open(Path(spec['out'])/'predictions.csv', 'w') as f:
            f.write('id,label\n' + ''.join(f"{Path(fn).name},{vocab[i]}\n" for fn, i in zip(spec['test'], p)))
    return dict(train_s=t_train, images_seen=spec['epochs'] * len(train), import_s=t_import, valid_accuracy=trainer.state.best_metric)

# --------------------------------------------------------------------------------------------------- the data and model
def make_data(a, tmp:Path)->Path:
    "A folder with `train/<class>/`, `test/` and `test_labels.csv`: `--folder`, or the digits."
    if a.folder: return Path(a.folder)
    from clip_nbdev.datasets import digits_folder
    n_all = 150 if a.smoke else 1797  # --smoke: 100 labelled, 50 test
    return digits_folder(tmp/'digits', n=n_all, test_pct=1 - a.n_labelled / n_all, seed=a.seed)

def split(a, root:Path)->dict:
    "The labelled images as clip_nbdev splits them (its own splitter, seed and valid_pct), and the test images."
    from clip_nbdev.data import class_folder_items, find_images, _splitter
    files, labels = class_folder_items(root/'train', progress=False)
    ys = [labels[f] for f in files]
    tr, va = _splitter(ys, a.valid_pct, a.seed)(files)
    test = sorted(str(f) for f in find_images(root/'test')) if (root/'test').exists() else []
    return dict(train=[(str(files[i]), ys[i]) for i in tr], valid=[(str(files[i]), ys[i]) for i in va], test=test, vocab=sorted(set(ys)))

def make_model(a, tmp:Path)->str:
    "The folder both sides load: the built-in `tiny-pretrained`, a random ViT-B/16-sized CLIP (tiny with `--smoke`), or `--model` as a folder."
    if a.model == 'tiny-pretrained':
        from clip_nbdev.model import builtin_model
        return str(builtin_model('tiny-pretrained'))
    if a.model != 'vit-b-random': return a.model
    from transformers import CLIPConfig, CLIPModel
    v = (dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=16) if not a.smoke else
         dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=8))
    cfg = CLIPConfig(vision_config=dict(image_size=a.img_size, projection_dim=32, **v),
                     text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                                      max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32), projection_dim=32)
    import torch; torch.manual_seed(a.seed)
    d = tmp/'vit-b-random'; CLIPModel(cfg).save_pretrained(d)
    return str(d)

# --------------------------------------------------------------------------------------------------- one run of each side
def env(a, src_dir=None)->dict:
    src_dir = src_dir or a.src_dir
    pp = {'PYTHONPATH': os.pathsep.join([src_dir] + [p for p in [os.environ.get('PYTHONPATH')] if p])} if src_dir else {}
    return {**os.environ, **pp, 'OMP_NUM_THREADS': str(a.threads), 'MKL_NUM_THREADS': str(a.threads), 'HF_HUB_OFFLINE': '1',
            'PYTHONWARNINGS': 'ignore', 'MPLBACKEND': 'Agg', **({'CUDA_VISIBLE_DEVICES': ''} if a.device == 'cpu' else {})}

def accuracy(pred_csv:Path, root:Path)->float|None:
    "The share of `pred_csv`'s labels that match `root/test_labels.csv`."
    if not pred_csv.exists() or not (root/'test_labels.csv').exists(): return None
    read = lambda p: dict(l.split(',', 1) for l in p.read_text().strip().splitlines()[1:])
    pred, truth = read(pred_csv), read(root/'test_labels.csv')
    return sum(pred[k] == truth.get(k) for k in pred) / max(len(pred), 1)

def run_clip_nbdev(a, root:Path, model_dir:str, bs:int, out:Path, src_dir=None)->dict:
    exe = [str(BIN/'clip-nbdev-train')] if (BIN/'clip-nbdev-train').exists() else [sys.executable, '-m', 'clip_nbdev.cli']  # not installed (the GPU machine): the module (trains by default)
    cmd = [*exe, '--train_dir', str(root/'train'), '--model_name', model_dir, '--head_init', 'random',
           '--img_size', str(a.img_size), str(a.img_size), '--valid_pct', str(a.valid_pct), '--seed', str(a.seed),
           '--ra_magnitude', '0', '--no_flip', '--crop', '1', '--batch_size', str(bs), '--epochs', str(a.epochs), '--lr', str(a.lr),
           '--warmup_pct', str(a.warmup_pct), '--precision', a.precision, '--output_dir', str(out), '--overwrite', '--quiet']
    if (root/'test').exists(): cmd[len(exe) + 2:len(exe) + 2] = ['--test_dir', str(root/'test')]
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env(a, src_dir), capture_output=True, text=True)
    whole = time.perf_counter() - t
    if p.returncode: raise SystemExit(f"clip-nbdev-train failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    s = json.loads((out/'summary.json').read_text())
    seen = s['train_images_seen']
    return dict(whole_s=whole, train_s=seen / s['train_images_per_s'], images_seen=seen, valid_accuracy=s['best_accuracy'],
                test_accuracy=accuracy(out/'predictions.csv', root), command=' '.join(cmd[len(exe):]), result_line=p.stdout.strip().splitlines()[-1])

def run_trainer(a, root:Path, data:dict, model_dir:str, bs:int, out:Path)->dict:
    out.mkdir(parents=True, exist_ok=True)
    spec = dict(data, model_dir=model_dir, img_size=a.img_size, epochs=a.epochs, bs=bs, lr=a.lr, wd=a.wd, warmup_pct=a.warmup_pct,
                seed=a.seed, threads=a.threads, device=a.device, precision=a.precision, out=str(out))
    (out/'spec.json').write_text(json.dumps(spec))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), '--side', 'trainer', '--spec', str(out/'spec.json')],
                       env=env(a), capture_output=True, text=True)
    whole = time.perf_counter() - t
    if p.returncode: raise SystemExit(f"the Trainer side failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    r = json.loads([l for l in p.stdout.splitlines() if l.startswith('PEERS_RESULT ')][-1][len('PEERS_RESULT '):])
    return dict(whole_s=whole, **r, test_accuracy=accuracy(out/'predictions.csv', root))

# --------------------------------------------------------------------------------------------------- the report
def versions()->dict:
    from importlib.metadata import version
    v = {}
    for p in ('clip_nbdev', 'torch', 'transformers', 'fastai', 'fastcore', 'accelerate'):
        try: v[p] = version(p)
        except Exception: v[p] = None
    return v

def machine(a)->dict:
    m = dict(platform=platform.platform(), python=platform.python_version(), cpus=os.cpu_count(), processor=platform.processor())
    try: m['cpu_model'] = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    try: m['loadavg_at_start'] = os.getloadavg()
    except Exception: pass
    if a.device == 'cuda':
        import torch
        m['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return m

def mean(xs): xs = [x for x in xs if x is not None]; return sum(xs) / len(xs) if xs else None

def summarise(rows:list, bs:int)->dict:
    "Means per side and the ratios clip_nbdev / Trainer."
    out = {}
    for side in dict.fromkeys(x['side'] for x in rows):
        r = [x for x in rows if x['side'] == side and x['bs'] == bs]
        out[side] = dict(whole_s=mean([x['whole_s'] for x in r]), train_s=mean([x['train_s'] for x in r]),
                         images_per_s=mean([x['images_seen'] / x['train_s'] for x in r]), test_accuracy=mean([x['test_accuracy'] for x in r]),
                         valid_accuracy=mean([x['valid_accuracy'] for x in r]))
    t = out.get('trainer')
    for side in [k for k in out if k.startswith('clip_nbdev')]:
        c = out[side]
        ratio = lambda k: c[k] / t[k] if t and c[k] is not None and t[k] else None
        out['ratios' + side[len('clip_nbdev'):]] = dict(images_per_s=ratio('images_per_s'), whole_command=ratio('whole_s'), test_accuracy=ratio('test_accuracy'))
    return out

def fmt(x, f='.1f'): return '-' if x is None else format(x, f)

def table(rows:list, summary:dict, bs:int):
    print(f"\nbatch {bs}\n\n| | whole command (s) | training with per-epoch validation (s) | training images/s | test accuracy |\n|---|---|---|---|---|")
    names = {'clip_nbdev': 'clip-nbdev-train', 'clip_nbdev_before': 'clip-nbdev-train (--src_before)', 'trainer': 'transformers Trainer'}
    for side in dict.fromkeys(x['side'] for x in rows):
        name, r = names[side], [x for x in rows if x['side'] == side and x['bs'] == bs]
        print(f"| {name} | {', '.join(fmt(x['whole_s']) for x in r)} | {', '.join(fmt(x['train_s']) for x in r)} | "
              f"{', '.join(fmt(x['images_seen'] / x['train_s'], '.0f') for x in r)} | {', '.join(fmt(x['test_accuracy'], '.4f') for x in r)} |")
    for k in [k for k in summary if k.startswith('ratios')]: _ratios(k, summary[k])

def _ratios(k, q):
    print(f"\n{'clip_nbdev' + k[len('ratios'):]} / Trainer: training images/s {fmt(q['images_per_s'], '.2f')}x, whole command {fmt(q['whole_command'], '.2f')}x "
          f"(below 1: clip_nbdev is quicker), test accuracy {fmt(q['test_accuracy'], '.3f')}x")

# --------------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', type=int, default=2, help='runs of each side, alternated')
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--bs', type=int, nargs='+', default=[32], help='batch sizes (each compared in turn)')
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--wd', type=float, default=0.01)
    ap.add_argument('--warmup_pct', type=float, default=0.1)
    ap.add_argument('--img_size', type=int, default=32)
    ap.add_argument('--n_labelled', type=int, default=1000, help='labelled digits (train + validation); the rest of the 1,797 are the test set')
    ap.add_argument('--valid_pct', type=float, default=0.2)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--model', default='tiny-pretrained', help="tiny-pretrained, vit-b-random (ViT-B/16-sized, random weights; tiny with --smoke) or a CLIP folder")
    ap.add_argument('--folder', default=None, help='a folder with train/<class>/, test/ and test_labels.csv instead of the digits')
    ap.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    ap.add_argument('--precision', default=None, help='fp32 or bf16 (default: bf16 on cuda, fp32 on the cpu)')
    ap.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS of each side')
    ap.add_argument('--sides', nargs='+', default=['clip_nbdev', 'trainer'], choices=['clip_nbdev', 'clip_nbdev_before', 'trainer'])
    ap.add_argument('--src', default=None, help="measure clip_nbdev as committed at this git revision (e.g. HEAD), not the working tree's (others' unfinished edits)")
    ap.add_argument('--src_before', default=None, help="also measure clip_nbdev at this git revision, alternated with the others (a before/after in one session)")
    ap.add_argument('--note', default='', help='recorded in the JSON (e.g. what else the machine was doing)')
    ap.add_argument('--smoke', action='store_true', help='2 epochs, 100 labelled images, 1 run: checks that the script runs')
    ap.add_argument('--out', default=None, help='JSON file (default: bench/results/peers_<device>_<date>.json; none with --smoke)')
    ap.add_argument('--side', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--spec', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side == 'trainer':
        print('PEERS_RESULT ' + json.dumps(trainer_side(json.loads(Path(a.spec).read_text()))), flush=True)
        return
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if a.smoke: a.epochs, a.n_labelled, a.runs = 2, 100, 1
    a.precision = a.precision or ('bf16' if a.device == 'cuda' else 'fp32')
    rows, t0 = [], time.time()
    m0 = machine(a)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        a.src_dir, a.src_commit = None, None
        if a.src:
            a.src_commit = subprocess.run(['git', 'rev-parse', a.src], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
            (tmp/'src').mkdir()
            subprocess.run(f"git archive {a.src_commit} clip_nbdev | tar -x -C {tmp/'src'}", shell=True, cwd=ROOT, check=True)
            a.src_dir = str(tmp/'src'); sys.path.insert(0, a.src_dir)
        a.src_before_commit, before_dir = None, None
        if a.src_before:
            a.src_before_commit = subprocess.run(['git', 'rev-parse', a.src_before], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
            before_dir = tmp/'src_before'; before_dir.mkdir()
            subprocess.run(f"git archive {a.src_before_commit} clip_nbdev | tar -x -C {before_dir}", shell=True, cwd=ROOT, check=True)
            if 'clip_nbdev_before' not in a.sides: a.sides.insert(1, 'clip_nbdev_before')
        root = make_data(a, tmp)
        data, model_dir = split(a, root), make_model(a, tmp)
        print(f"{len(data['train'])} training, {len(data['valid'])} validation, {len(data['test'])} test images; model {a.model} ({model_dir}); "
              f"{a.epochs} epochs, lr {a.lr}, {a.threads} thread(s) each, {a.device} {a.precision}", flush=True)
        for bs in a.bs:
            for run in range(a.runs):
                for side in a.sides:
                    out = tmp/f'{side}_bs{bs}_run{run}'
                    r = (run_trainer(a, root, data, model_dir, bs, out) if side == 'trainer' else
                         run_clip_nbdev(a, root, model_dir, bs, out, str(before_dir) if side == 'clip_nbdev_before' else None))
                    r = dict(side=side, bs=bs, run=run, **r)
                    rows.append(r)
                    print(f"{side:>10} bs {bs} run {run}: whole {r['whole_s']:.1f} s, training {r['train_s']:.1f} s "
                          f"({r['images_seen'] / r['train_s']:.0f} images/s), test accuracy {fmt(r['test_accuracy'], '.4f')}", flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    summaries = {bs: summarise(rows, bs) for bs in a.bs}
    for bs in a.bs: table(rows, summaries[bs], bs)
    print(f"\n{time.time() - t0:.0f} s in all")
    if a.smoke and not a.out: return
    res = dict(date=time.strftime('%Y-%m-%d %H:%M'), args=vars(a), note=a.note, machine=m0, versions=versions(), summary=summaries, runs=rows,
               settings=dict(data='scikit-learn digits (clip_nbdev.datasets.digits_folder)' if not a.folder else a.folder,
                             augmentation='none on either side', split="clip_nbdev's own splitter, handed to the Trainer",
                             clip_nbdev="clip-nbdev-train (the real command), fastai AdamW on every parameter, best model by validation accuracy",
                             trainer="Trainer + CLIPForImageClassification (mean of the patch tokens -> head), PIL decode per item, AdamW "
                                     "(HF: no decay on biases and norms), eval and checkpoint each epoch, best model by validation accuracy loaded at the end"))
    res['machine']['loadavg_at_end'] = os.getloadavg()
    out = Path(a.out or ROOT/'bench'/'results'/f"peers_{a.device}_{time.strftime('%Y-%m-%d')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"written to {out}")

if __name__ == '__main__': main()
