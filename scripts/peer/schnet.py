#!/usr/bin/env python3
"""SchNet, small and faithful: the measurement peer of qdf (see docs/peer.md).

SchNet is the model of K. T. Schütt, H. E. Sauceda, P.-J. Kindermans, A. Tkatchenko and
K.-R. Müller, "SchNet – A deep learning architecture for molecules and materials",
J. Chem. Phys. 148, 241722 (2018) (arXiv:1712.06113), itself building on Schütt et al.,
"SchNet: A continuous-filter convolutional neural network for modeling quantum
interactions", NeurIPS 2017. This file implements it with torch and numpy only (no
schnetpack, no torch_geometric), trains it on a QDF-text data set (train.txt / val.txt /
test.txt) on the CPU for a budget of wall-clock or CPU seconds, keeps the parameters with the best
validation MAE, and writes predictions as `qdf predict` does (ID, Correct, Predict, Error),
so that `qdf report` overlays them with qdf's own runs. It is a yardstick for qdf, never a
part or a dependency of it.

The model (the equations as written in the paper, with i the atom being updated and j
its neighbours):

  embedding               x_i^0 = a_{Z_i}                      (a learned 128-vector per element)
  atom-wise layer         x_i^{l+1} = W^l x_i^l + b^l          (the same dense layer for every atom)
  continuous-filter conv  x_i^{l+1} = sum_j x_j^l ∘ W^l(r_i - r_j)     (∘: element-wise product)
  radial basis            e_k(r_i - r_j) = exp(-γ (|r_i - r_j| - μ_k)^2),  μ_k = 0 … 5 Å (50),
                          γ = 10 Å^-2 (the paper's value; not the spacing-derived width)
  filter network          W^l(r_ij) = ssp(D2(ssp(D1(e(r_ij))))) · f_cut(|r_ij|)
                          (two dense layers 50→128→128, each followed by ssp)
  cosine cutoff           f_cut(r) = ½ [cos(π r / r_c) + 1] for r < r_c = 5 Å, else 0
                          (Behler's cutoff, as SchNetPack applies it to SchNet's filters)
  shifted softplus        ssp(x) = ln(½ e^x + ½) = softplus(x) - ln 2
  interaction block       v_i = Dense(ssp(Dense(cfconv(Dense(x)))))_i ;  x_i ← x_i + v_i  (×6)
  output (sum, default)   E = Σ_Z n_Z b_Z + Σ_i Dense_64→1(ssp(Dense_128→64(x_i)))
  output (mean)           P = b̄ + (1/n) Σ_i Dense_64→1(ssp(Dense_128→64(x_i)))   (n real atoms)

where b_Z is a per-element baseline fitted by linear least squares on the training set
(E ≈ Σ_a b_{Z_a}) and subtracted from the targets; the network learns the remainder. The
sum suits extensive properties (energies, α, Cv), which grow with the molecule; intensive
ones (μ, HOMO, LUMO, gap) take the mean over the atoms, as SchNetPack does for them, with
the training set's mean value b̄ as the baseline (--aggregation; by default from the data
set's dataset.json, "kind": "intensive" → mean, "extensive" → sum; without it, sum).
Neighbour lists are full: every pair i ≠ j of a molecule within r_c (molecules are small:
all pairwise distances of a zero-padded batch are computed and masked). Since the filter
depends on the distance only, W(r_ij) = W(r_ji) is computed once per pair and used in both
directions of the sum (the same sum, half the work).

Training: squared-error loss on the energy, Adam (lr 5e-4), batch 32, cosine decay of the
learning rate over the budget (wall-clock, or CPU seconds with --budget-clock cpu) to 0, float32, one seed for everything. Validation
after every epoch; the parameters with the best validation MAE are kept (chosen on
validation only) and predict the test set and any --extra file at the end.

usage:  schnet.py DATASET_DIR OUT_DIR [--budget 30m] [--budget-clock wall|cpu] [--aggregation sum|mean]
                  [--unit U] [--extra FILE]... [--seed S] [--threads N]
        schnet.py --resume OUT_DIR [--threads N] [--budget TOTAL] [--extra FILE]...
        schnet.py --self-test
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Element symbols by atomic number (Z = index; 0 is padding).
SYMBOLS = ("X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn "
           "Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe").split()
ATOMIC_NUMBER = {s: z for z, s in enumerate(SYMBOLS) if z > 0}
MAX_Z = len(SYMBOLS)  # size of the embedding table

DEFAULTS = dict(budget="30m", budget_clock="wall", seed=1, threads=2, features=128, interactions=6, gaussians=50,
                cutoff=5.0, gamma=10.0, readout_hidden=64, lr=5e-4, lr_floor=0.0, batch=32,
                eval_batch=100, unit="eV", aggregation="sum")
# unit and aggregation: when not given, from the data set's dataset.json if it has one
# (dataset_defaults), else these.
AGGREGATIONS = ("sum", "mean")


# ----------------------------------------------------------------------------------------
# Data: the QDF text format
# ----------------------------------------------------------------------------------------

class Molecule:
    __slots__ = ("id", "z", "pos", "value", "value_text")

    def __init__(self, id, z, pos, value, value_text):
        self.id, self.z, self.pos, self.value, self.value_text = id, z, pos, value, value_text


def _is_number(token):
    try:
        float(token)
        return True
    except ValueError:
        return False


def read_qdf_text(path):
    """Reads a QDF text file: blocks separated by blank lines; each block is an id line,
    one "Element x y z" line per atom (Å), and a property line (the line whose first token
    is a number, as qdf's reader tells it apart). One property value is expected."""
    molecules, block, start = [], [], 0

    def finish():
        where = f"{path}:{start}"
        mid = " ".join(block[0][1])
        atoms, value = [], None
        for n, t in block[1:]:
            if value is not None:
                sys.exit(f"{path}:{n}: a line after the property line of '{mid}' (a blank line must end each molecule)")
            if t[0] in ATOMIC_NUMBER or not _is_number(t[0]):
                if len(t) != 4 or t[0] not in ATOMIC_NUMBER or not all(_is_number(s) for s in t[1:]):
                    sys.exit(f"{path}:{n}: expected 'Element x y z', found '{' '.join(t)[:60]}'")
                atoms.append((ATOMIC_NUMBER[t[0]], [float(s) for s in t[1:]]))
            else:
                if len(t) != 1:
                    sys.exit(f"{path}:{n}: {len(t)} property values; this peer trains on one value per molecule")
                value = t[0]
        if not atoms:
            sys.exit(f"{where}: molecule '{mid}' has no atoms")
        if value is None:
            sys.exit(f"{where}: molecule '{mid}' has no property line (the peer needs the correct values)")
        z = np.array([a[0] for a in atoms], dtype=np.int64)
        pos = np.array([a[1] for a in atoms], dtype=np.float64)
        molecules.append(Molecule(mid, z, pos, float(value), repr(float(value))))

    with open(path) as f:
        for n, line in enumerate(f, 1):
            t = line.split()
            if not t:
                if block:
                    finish()
                    block = []
                continue
            if not block:
                start = n
            block.append((n, t))
    if block:
        finish()
    if not molecules:
        sys.exit(f"{path}: no molecules")
    return molecules


class PaddedSet:
    """Molecules as zero-padded tensors: Z [M, N] (0 = no atom), R [M, N, 3] (Å, float32),
    the number of atoms [M], the targets [M] (float64) and their baseline [M] (per-element
    sum or the training-set mean)."""

    def __init__(self, molecules, baseline):
        self.molecules = molecules
        m, n = len(molecules), max(len(x.z) for x in molecules)
        z = np.zeros((m, n), dtype=np.int64)
        r = np.zeros((m, n, 3), dtype=np.float32)
        for k, x in enumerate(molecules):
            z[k, :len(x.z)] = x.z
            r[k, :len(x.z)] = x.pos
        self.Z, self.R = torch.from_numpy(z), torch.from_numpy(r)
        self.natoms = torch.tensor([len(x.z) for x in molecules])
        self.target = np.array([x.value for x in molecules], dtype=np.float64)
        self.base = baseline.predict(molecules)
        # The training target: what the network must add to the baseline (float32).
        self.residual = torch.tensor(self.target - self.base, dtype=torch.float32)

    def __len__(self):
        return len(self.molecules)

    def batch(self, index):
        """Z, R of the molecules `index` (a LongTensor), cropped to the largest of them."""
        n = int(self.natoms[index].max())
        return self.Z[index, :n], self.R[index, :n]


class ElementBaseline:
    """E ≈ Σ_a b_{Z_a}: per-element energies by linear least squares on the training set."""

    def __init__(self, coefficients):
        self.b = dict(coefficients)  # symbol -> eV

    @staticmethod
    def fit(molecules):
        elements = sorted({int(z) for x in molecules for z in x.z})
        col = {z: k for k, z in enumerate(elements)}
        counts = np.zeros((len(molecules), len(elements)))
        for i, x in enumerate(molecules):
            for z in x.z:
                counts[i, col[int(z)]] += 1
        target = np.array([x.value for x in molecules])
        b, *_ = np.linalg.lstsq(counts, target, rcond=None)
        return ElementBaseline({SYMBOLS[z]: float(v) for z, v in zip(elements, b)})

    def predict(self, molecules):
        missing = {SYMBOLS[int(z)] for x in molecules for z in x.z} - set(self.b)
        if missing:
            print(f"warning: elements without a baseline (not in the training set): {sorted(missing)}", file=sys.stderr)
        return np.array([sum(self.b.get(SYMBOLS[int(z)], 0.0) for z in x.z) for x in molecules])

    def describe(self, unit):
        return f"per-element baseline ({unit}): " + ", ".join(f"{s} {b:.4f}" for s, b in self.b.items())


class MeanBaseline:
    """P ≈ b̄: one constant, the mean value of the training set (the baseline of the mean
    readout, for intensive properties). Stored as the checkpoint stores the per-element
    baseline, a dict of floats: {"mean": b̄}."""

    KEY = "mean"

    def __init__(self, coefficients):
        self.b = dict(coefficients)
        if set(self.b) != {self.KEY}:
            sys.exit(f"error: a mean baseline is {{'{self.KEY}': value}}, found keys {sorted(self.b)}")

    @staticmethod
    def fit(molecules):
        return MeanBaseline({MeanBaseline.KEY: float(np.mean([x.value for x in molecules]))})

    def predict(self, molecules):
        return np.full(len(molecules), self.b[self.KEY], dtype=np.float64)

    def describe(self, unit):
        return f"baseline: the training-set mean, {self.b[self.KEY]:.4f} {unit}"


BASELINES = {"sum": ElementBaseline, "mean": MeanBaseline}


def dataset_defaults(folder):
    """What the data set's dataset.json (written by `qdf dataset`, see
    Sources/QuantumDeepField/Training/DatasetMetadata.swift) says of its values: a dict with
    "aggregation" (intensive → mean, extensive → sum) and "unit" (when all properties share
    one), or {} when the folder has no dataset.json. Exits with a message for a file that is
    not such a description or that mixes extensive and intensive properties."""
    path = os.path.join(folder, "dataset.json")
    if not os.path.isfile(path):
        return {}
    hint = "(or give --aggregation and --unit)"
    try:
        with open(path) as f:
            top = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {path}: cannot read it: {e} {hint}")
    props = top.get("properties") if isinstance(top, dict) else None
    if not isinstance(props, list) or not props or not all(isinstance(p, dict) for p in props):
        sys.exit(f"error: {path}: expected a non-empty \"properties\" list of objects {hint}")
    kinds = [p.get("kind") for p in props]
    bad = [k for k in kinds if k not in ("extensive", "intensive")]
    if bad:
        sys.exit(f"error: {path}: kind must be extensive or intensive, found {bad[0]!r} {hint}")
    if len(set(kinds)) > 1:
        sys.exit(f"error: {path}: the properties mix extensive and intensive kinds; one readout cannot suit both "
                 f"{hint}")
    out = dict(aggregation="mean" if kinds[0] == "intensive" else "sum",
               kind=kinds[0], names=[str(p.get("name", "?")) for p in props])
    units = {p.get("unit") for p in props}
    if len(units) == 1 and isinstance(next(iter(units)), str) and next(iter(units)).strip():
        out["unit"] = next(iter(units))
    return out


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------

def shifted_softplus(x):
    """ssp(x) = ln(½ e^x + ½) = softplus(x) − ln 2, so that ssp(0) = 0."""
    return F.softplus(x) - math.log(2.0)


class Dense(nn.Linear):
    """Atom-wise layer x ↦ W x + b (optionally followed by ssp); Xavier-uniform weights and
    zero biases, as in SchNetPack."""

    def __init__(self, n_in, n_out, bias=True, activation=False):
        super().__init__(n_in, n_out, bias=bias)
        self.activation = activation
        nn.init.xavier_uniform_(self.weight)
        if bias:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        y = super().forward(x)
        return shifted_softplus(y) if self.activation else y


def cosine_cutoff(d, cutoff):
    """f_cut(r) = ½ [cos(π r / r_c) + 1] inside the cutoff, 0 outside."""
    return 0.5 * (torch.cos(d * (math.pi / cutoff)) + 1.0) * (d < cutoff).to(d.dtype)


class GaussianRBF(nn.Module):
    """e_k(r) = exp(−γ (r − μ_k)²), μ_k evenly spaced on [0, r_c]."""

    def __init__(self, n, cutoff, gamma):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n))
        self.gamma = gamma

    def forward(self, d):
        return torch.exp(-self.gamma * (d.unsqueeze(-1) - self.centers) ** 2)


class Interaction(nn.Module):
    """One interaction block: atom-wise → cfconv → atom-wise + ssp → atom-wise; the block's
    output v is added to the atom features (residual update x ← x + v)."""

    def __init__(self, features, gaussians):
        super().__init__()
        # Filter-generating network: 2 dense layers on the radial basis, each with ssp.
        self.filter1 = Dense(gaussians, features, activation=True)
        self.filter2 = Dense(features, features, activation=True)
        self.in2f = Dense(features, features, bias=False)   # atom-wise before the convolution
        self.f2out = Dense(features, features, activation=True)
        self.out = Dense(features, features)

    def forward(self, x, rbf, cut, i, j):
        # x [A, F]: the atoms of the batch; (i, j) [P]: each neighbour pair once (i < j, same
        # molecule, |r_ij| < r_c); rbf [P, K] and cut [P] = f_cut(|r_ij|) of those pairs.
        w = self.filter2(self.filter1(rbf)) * cut.unsqueeze(-1)             # W^l(r_ij) [P, F]
        h = self.in2f(x)
        # cfconv, x_i ← Σ_j x_j ∘ W(r_ij): W(r_ij) = W(r_ji) depends on the distance only,
        # so each pair's filter is computed once and serves both directions.
        conv = torch.zeros_like(h).index_add_(0, i, w * h[j]).index_add_(0, j, w * h[i])
        return self.out(self.f2out(conv))


class SchNet(nn.Module):
    """Energy (minus the baseline) of zero-padded molecules Z [B, N], R [B, N, 3] (Z = 0: no
    atom): the sum of the atom-wise outputs (aggregation "sum") or their mean over the
    molecule's real atoms ("mean"). Padding atoms are in no pair and left out of both."""

    def __init__(self, features=128, interactions=6, gaussians=50, cutoff=5.0, gamma=10.0,
                 readout_hidden=64, aggregation="sum"):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {aggregation!r}")
        self.aggregation = aggregation   # not a parameter: state dicts are the same for both
        self.cutoff = cutoff
        self.embedding = nn.Embedding(MAX_Z, features, padding_idx=0)
        self.rbf = GaussianRBF(gaussians, cutoff, gamma)
        self.interactions = nn.ModuleList(Interaction(features, gaussians) for _ in range(interactions))
        self.readout1 = Dense(features, readout_hidden, activation=True)
        self.readout2 = Dense(readout_hidden, 1)

    def forward(self, Z, R):
        B, N = Z.shape
        atom = Z > 0                                                        # [B, N]
        # Full neighbour lists: every pair of atoms of a molecule within r_c (each pair
        # once, i < j), from all pairwise distances of the padded batch.
        d = torch.linalg.vector_norm(R.unsqueeze(2) - R.unsqueeze(1), dim=-1)  # [B, N, N]
        pairs = torch.triu(atom.unsqueeze(2) & atom.unsqueeze(1) & (d < self.cutoff), diagonal=1)
        b, i, j = pairs.nonzero(as_tuple=True)
        dij = d[b, i, j]
        i, j = b * N + i, b * N + j                                         # indices into [B·N]
        rbf, cut = self.rbf(dij), cosine_cutoff(dij, self.cutoff)
        x = self.embedding(Z.reshape(-1))                                   # x_i^0 = a_{Z_i}  [B·N, F]
        for block in self.interactions:
            x = x + block(x, rbf, cut, i, j)
        e_atom = self.readout2(self.readout1(x)).view(B, N)                 # atom-wise energies
        mask = atom.to(e_atom.dtype)
        total = (e_atom * mask).sum(dim=1)                                  # sum readout
        if self.aggregation == "mean":                                      # mean over the real atoms
            return total / mask.sum(dim=1).clamp(min=1.0)
        return total


# ----------------------------------------------------------------------------------------
# Evaluation and output files
# ----------------------------------------------------------------------------------------

@torch.no_grad()
def predict(model, data, batch_size):
    """Predictions (float32, baseline added) of every molecule of `data`, in file order;
    molecules are batched by size to keep the padding small."""
    model.eval()
    order = torch.argsort(data.natoms, stable=True)
    out = np.zeros(len(data), dtype=np.float64)
    for k in range(0, len(data), batch_size):
        idx = order[k:k + batch_size]
        out[idx.numpy()] = model(*data.batch(idx)).double().numpy()
    model.train()
    return (data.base + out).astype(np.float32)


def errors(data, pred32):
    """|Predict − Correct| as qdf computes it: in double, then stored as float32."""
    return np.abs(data.target - pred32.astype(np.float64)).astype(np.float32)


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_predictions(path, data, pred32):
    """The TSV of `qdf predict`: ID, Correct (the file's value), Predict and Error (float32)."""
    err = errors(data, pred32)
    rows = ["ID\tCorrect\tPredict\tError"]
    for m, p, e in zip(data.molecules, pred32, err):
        rows.append(f"{m.id}\t{m.value_text}\t{str(np.float32(p))}\t{str(np.float32(e))}")
    write_atomically(path, "\n".join(rows) + "\n")
    return float(err.astype(np.float64).mean())


def write_learning_curve(path, rows, unit):
    """qdf's learning-curve columns, so `qdf report OUT_DIR` reads it: Loss_E is the epoch's
    mean squared training error (unit²); Loss_V (qdf's potential loss) and MAE_test (the test
    set is predicted once, at the end) are nan; lr is the learning rate at the epoch's end."""
    lines = [f"Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val({unit})\tMAE_test({unit})\tlr"]
    for r in rows:
        lines.append(f"{r['epoch']}\t{r['seconds']:.1f}\t{r['loss']:.6g}\tnan\t{r['val_mae']:.6g}\tnan\t{r['lr']:.4g}")
    write_atomically(path, "\n".join(lines) + "\n")


def cpu_info():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family") and key not in info:
                    info[key] = value.strip()
    except OSError:
        pass
    return info.get("model name", platform.processor() or "unknown"), info.get("cpu family", "unknown")


# ----------------------------------------------------------------------------------------
# Training for a wall-clock budget, with checkpoints and resume
# ----------------------------------------------------------------------------------------

def parse_budget(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        sys.exit(f"error: --budget '{text}': expected a number with an optional s, m or h suffix (e.g. 30m)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def cosine_lr(args, elapsed, budget):
    """lr(t) = floor + ½ (lr₀ − floor)(1 + cos(π t / budget)), t = training seconds so far."""
    frac = min(max(elapsed / budget, 0.0), 1.0)
    return args["lr_floor"] + 0.5 * (args["lr"] - args["lr_floor"]) * (1.0 + math.cos(math.pi * frac))


class Stop:
    """SIGINT/SIGTERM: finish the batch, write the checkpoint, exit; a second signal stops at once."""

    def __init__(self):
        self.signum = None
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self.handle)

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: finishing the batch, then writing the checkpoint", file=sys.stderr)


def extra_names(paths):
    """predictions_<stem>.tsv per extra file; a stem that is taken (test, val, train, an
    earlier extra) gets its folder's name in front: <folder>_<stem>."""
    names, taken = [], {"test", "val", "train"}
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        if stem in taken:
            stem = os.path.basename(os.path.dirname(os.path.abspath(p))) + "_" + stem
        while stem in taken:
            stem += "_"
        taken.add(stem)
        names.append(stem)
    return names


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def run(cli):
    out = os.path.abspath(cli.resume or cli.out)
    ckpt_path = os.path.join(out, "checkpoint.pt")
    if cli.resume:
        if not os.path.exists(ckpt_path):
            sys.exit(f"error: {ckpt_path} not found")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        args = ckpt["args"]
        # A checkpoint written before --aggregation existed is a sum run (per-element baseline).
        if "aggregation" not in args:
            args["aggregation"] = "sum"
            args["aggregation_from"] = "a checkpoint written before --aggregation existed: sum"
        # What may change on resume: the threads, the total budget, more extra files.
        if cli.threads is not None:
            args["threads"] = cli.threads
        if cli.budget is not None:
            args["budget"] = cli.budget
        args["extra"] = args["extra"] + [os.path.abspath(p) for p in cli.extra if os.path.abspath(p) not in args["extra"]]
        if cli.dataset or any(getattr(cli, k) is not None for k in DEFAULTS if k not in ("threads", "budget")):
            sys.exit("error: with --resume only --threads, --budget and --extra may be given")
        if ckpt["state"]["finished"]:
            print("the run is finished (its budget is spent): writing its predictions again", file=sys.stderr)
    else:
        if not cli.dataset or not cli.out:
            sys.exit("usage: schnet.py DATASET_DIR OUT_DIR [options]  (or --resume OUT_DIR, --self-test)")
        if os.path.exists(ckpt_path):
            sys.exit(f"error: {ckpt_path} exists: continue it with --resume {out}, or choose another OUT_DIR")
        ckpt = None
        args = {k: (getattr(cli, k) if getattr(cli, k) is not None else v) for k, v in DEFAULTS.items()}
        args["dataset"] = os.path.abspath(cli.dataset)
        # Not given: the aggregation and the unit the data set's dataset.json implies.
        meta = dataset_defaults(args["dataset"]) if cli.aggregation is None or cli.unit is None else {}
        if cli.aggregation is None and "aggregation" in meta:
            args["aggregation"] = meta["aggregation"]
        if cli.unit is None and "unit" in meta:
            args["unit"] = meta["unit"]
        args["aggregation_from"] = ("given: --aggregation" if cli.aggregation is not None else
                                    f"from dataset.json: {', '.join(meta['names'])} {meta['kind']}" if meta
                                    else "the default: no dataset.json")
        args["extra"] = [os.path.abspath(p) for p in cli.extra]
    budget = parse_budget(args["budget"])
    for f in [os.path.join(args["dataset"], f"{s}.txt") for s in ("train", "val", "test")] + args["extra"]:
        if not os.path.isfile(f):
            sys.exit(f"error: {f} not found")
    torch.set_num_threads(args["threads"])
    log = lambda *a: print(*a, file=sys.stderr, flush=True)

    # Data and the baseline (fitted on the training set only): per-element for the sum
    # readout, the mean value for the mean readout.
    raw = {s: read_qdf_text(os.path.join(args["dataset"], f"{s}.txt")) for s in ("train", "val", "test")}
    Baseline = BASELINES[args["aggregation"]]
    baseline = Baseline.fit(raw["train"]) if ckpt is None else Baseline(ckpt["baseline"])
    data = {s: PaddedSet(ms, baseline) for s, ms in raw.items()}
    extras = [(name, PaddedSet(read_qdf_text(p), baseline))
              for name, p in zip(extra_names(args["extra"]), args["extra"])]
    base_mae = {s: float(np.abs(d.target - d.base).mean()) for s, d in data.items()}
    base_mae.update({name: float(np.abs(d.target - d.base).mean()) for name, d in extras})
    os.makedirs(out, exist_ok=True)
    log(f"molecules: train {len(data['train'])}, val {len(data['val'])}, test {len(data['test'])}"
        + "".join(f", {n} {len(d)}" for n, d in extras))
    log(f"aggregation: {args['aggregation']} over the atoms"
        + (f" ({args['aggregation_from']})" if "aggregation_from" in args else "") + f"; unit {args['unit']}")
    log(baseline.describe(args["unit"]))
    log("baseline-only MAE: " + ", ".join(f"{s} {v:.4f}" for s, v in base_mae.items()) + f" {args['unit']}")

    # Model, optimizer, the random streams (all from one seed).
    torch.manual_seed(args["seed"])
    model = SchNet(args["features"], args["interactions"], args["gaussians"], args["cutoff"],
                   args["gamma"], args["readout_hidden"], args["aggregation"])
    optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
    rng = np.random.default_rng(args["seed"])
    n_params = sum(p.numel() for p in model.parameters())
    st = dict(epoch=0, pos=0, perm=None, loss_sum=0.0, loss_count=0, elapsed=0.0, curve=[],
              best_mae=math.inf, best_epoch=0, best_model=None, val_seconds=0.0, batches=0,
              sessions=0, finished=False)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        st.update(ckpt["state"])
        log(f"resuming {out}: epoch {st['epoch']}, batch {st['pos']}, {st['elapsed']:.0f} s of {budget:.0f} s used")
    st["sessions"] += 1
    log(f"SchNet: {n_params} parameters; budget {budget:.0f} s ({args.get('budget_clock', 'wall')} clock); {args['threads']} thread(s); torch {torch.__version__}")

    def checkpoint():
        save_checkpoint(ckpt_path, dict(
            args=args, baseline=baseline.b, model=model.state_dict(), optimizer=optimizer.state_dict(),
            rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(), state=st))

    train = data["train"]
    n_batches = math.ceil(len(train) / args["batch"])
    stop = Stop()
    # The budget's clock: elapsed seconds, or this process's CPU seconds (all threads), the
    # measure that stays fair when runs share a machine (qdf train --budget-clock cpu).
    now = time.process_time if args.get("budget_clock", "wall") == "cpu" else time.monotonic
    t0, elapsed0 = now(), st["elapsed"]
    elapsed = lambda: elapsed0 + (now() - t0)
    lr = cosine_lr(args, st["elapsed"], budget)

    while not st["finished"]:
        # Leave time for the validation that ends the run.
        if st["pos"] == 0 and elapsed() + st["val_seconds"] >= budget:
            break
        if st["pos"] == 0:  # a new epoch: a new shuffle
            st["epoch"] += 1
            st["perm"] = torch.from_numpy(rng.permutation(len(train)))
            st["loss_sum"], st["loss_count"] = 0.0, 0
        out_of_time = False
        while st["pos"] < n_batches:
            if elapsed() + st["val_seconds"] >= budget:
                out_of_time = True
                break
            idx = st["perm"][st["pos"] * args["batch"]:(st["pos"] + 1) * args["batch"]]
            lr = cosine_lr(args, elapsed(), budget)
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss = F.mse_loss(model(*train.batch(idx)), train.residual[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            st["loss_sum"] += loss.item() * len(idx)
            st["loss_count"] += len(idx)
            st["pos"] += 1
            st["batches"] += 1
            if stop.signum is not None:
                break
        if stop.signum is not None and st["pos"] < n_batches and not out_of_time:
            st["elapsed"] = elapsed()
            checkpoint()
            log(f"stopped in epoch {st['epoch']} at batch {st['pos']}/{n_batches} after {st['elapsed']:.0f} s; "
                f"continue with --resume {out}")
            sys.exit(128 + stop.signum)
        if st["loss_count"] == 0:   # out of time before the epoch's first batch
            break
        # End of the epoch (or of the budget): validation.
        tv = now()
        val_mae = float(errors(data["val"], predict(model, data["val"], args["eval_batch"])).astype(np.float64).mean())
        st["val_seconds"] = now() - tv
        best = val_mae < st["best_mae"]
        if best:
            st["best_mae"], st["best_epoch"] = val_mae, st["epoch"]
            st["best_model"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        st["pos"] = 0
        st["elapsed"] = elapsed()
        st["curve"].append(dict(epoch=st["epoch"], seconds=st["elapsed"], loss=st["loss_sum"] / st["loss_count"],
                                val_mae=val_mae, lr=lr, partial=out_of_time))
        write_learning_curve(os.path.join(out, "learning_curve.tsv"), st["curve"], args["unit"])
        log(f"epoch {st['epoch']:4d}  {st['elapsed']:7.1f} s  loss {st['loss_sum'] / st['loss_count']:.5f}  "
            f"val MAE {val_mae:.4f} {args['unit']}  lr {lr:.2e}{'  best' if best else ''}{'  (partial epoch)' if out_of_time else ''}")
        if out_of_time:
            st["finished"] = True
        checkpoint()
        if stop.signum is not None:
            log(f"stopped after epoch {st['epoch']} ({st['elapsed']:.0f} s); continue with --resume {out}")
            sys.exit(128 + stop.signum)
    st["finished"] = True   # st["elapsed"]: the training seconds, up to the last validation
    if st["best_model"] is None:  # no epoch at all (a tiny budget): the initial parameters
        st["best_model"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checkpoint()

    # The best parameters (on validation) predict validation, test and the extra files.
    model.load_state_dict(st["best_model"])
    tp = time.monotonic()
    maes = {"val": write_predictions(os.path.join(out, "predictions_val.tsv"), data["val"],
                                     predict(model, data["val"], args["eval_batch"])),
            "test": write_predictions(os.path.join(out, "predictions_test.tsv"), data["test"],
                                      predict(model, data["test"], args["eval_batch"]))}
    for name, d in extras:
        maes[name] = write_predictions(os.path.join(out, f"predictions_{name}.tsv"), d,
                                       predict(model, d, args["eval_batch"]))
    predict_seconds = time.monotonic() - tp
    cpu_name, cpu_family = cpu_info()
    summary = dict(
        model="SchNet (Schütt et al., J. Chem. Phys. 148, 241722 (2018)), scripts/peer/schnet.py",
        hyperparameters=dict(features=args["features"], interactions=args["interactions"],
                             gaussians=args["gaussians"], rbf_range_angstrom=[0.0, args["cutoff"]],
                             gamma_per_angstrom2=args["gamma"], cutoff_angstrom=args["cutoff"],
                             cutoff_function="cosine", activation="shifted softplus",
                             filter_network=f"{args['gaussians']}->{args['features']}->{args['features']}, ssp after each",
                             readout=f"{args['features']}->{args['readout_hidden']}->1 atom-wise, {args['aggregation']}",
                             aggregation=args["aggregation"],
                             baseline=("per-element linear least squares on the training set" if args["aggregation"] == "sum"
                                       else "the mean value of the training set (a constant)"),
                             optimizer="Adam", lr=args["lr"], lr_schedule=f"cosine over the budget ({args.get('budget_clock', 'wall')} clock)",
                             lr_floor=args["lr_floor"], batch=args["batch"], loss="mean squared error",
                             dtype="float32", parameters=n_params),
        aggregation_from=args.get("aggregation_from", "unknown"),
        seed=args["seed"], threads=args["threads"], budget_seconds=budget, budget_clock=args.get("budget_clock", "wall"), dataset=args["dataset"],
        extra_files=dict(zip(extra_names(args["extra"]), args["extra"])),
        molecules={s: len(d) for s, d in data.items()} | {n: len(d) for n, d in extras},
        epochs=len(st["curve"]), epochs_completed=sum(1 for r in st["curve"] if not r["partial"]),
        batches=st["batches"], seconds=round(st["elapsed"], 1), sessions=st["sessions"],
        best_epoch=st["best_epoch"], val_mae_best=st["best_mae"],
        mae={k: v for k, v in maes.items()}, baseline_only_mae=base_mae,
        **({"baseline_eV": baseline.b} if args["aggregation"] == "sum" else {"baseline_mean": baseline.b[MeanBaseline.KEY]}),
        unit=args["unit"], predict_seconds=round(predict_seconds, 2),
        torch=torch.__version__, numpy=np.__version__, python=platform.python_version(),
        cpu_model=cpu_name, cpu_family=cpu_family,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    write_atomically(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    log(f"done: {len(st['curve'])} epochs in {st['elapsed']:.0f} s; best val MAE {st['best_mae']:.4f} "
        f"(epoch {st['best_epoch']}); test MAE {maes['test']:.4f}"
        + "".join(f"; {n} MAE {maes[n]:.4f}" for n, _ in extras) + f" {args['unit']}  -> {out}")


# ----------------------------------------------------------------------------------------
# Self-test: symmetries and invariants of the model (python schnet.py --self-test)
# ----------------------------------------------------------------------------------------

@torch.no_grad()
def self_test():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    failures = []

    def check(name, ok, detail):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failures.append(name)

    # A QM9 molecule (dsgdb9nsd_000014, ethanol, as in the QM9under14atoms test set) and an
    # untrained SchNet with the default hyperparameters.
    text = """dsgdb9nsd_000014
C -0.0086050396 1.5020382883 -0.0068121748
C 0.0109931006 -0.0176487687 -0.013770355
O 0.6808884095 -0.4404180314 -1.1931320987
H 1.0115333417 1.896620303 -0.0192015475
H -0.5315986204 1.8807610923 -0.8897465868
H -0.5167457158 1.876117708 0.8871073864
H 0.5237712083 -0.3891229547 0.8882408183
H -1.0202754406 -0.4050726108 0.0169067033
H 0.6952957263 -1.4017956761 -1.2014849452
-33.00661185800112

"""
    path = f"/tmp/schnet-self-test-{os.getpid()}.txt"
    with open(path, "w") as f:
        f.write(text)
    (m,) = read_qdf_text(path)
    os.remove(path)
    check("parser", m.id == "dsgdb9nsd_000014" and list(m.z) == [6, 6, 8] + [1] * 6
          and m.value_text == "-33.00661185800112", f"id {m.id}, Z {m.z.tolist()}, value {m.value_text}")

    model = SchNet().eval()
    dtype = torch.float64  # the symmetry checks in double, to tell real breaks from rounding
    model64 = SchNet().to(dtype).eval()
    model64.load_state_dict(model.state_dict())

    def energy(mdl, z, pos, dt=torch.float32):
        return float(mdl(torch.tensor(z)[None], torch.tensor(pos, dtype=dt)[None]))

    z, pos = m.z, m.pos
    e0 = energy(model, z, pos)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.linalg.det(q))        # a proper rotation
    perm = rng.permutation(len(z))
    pos2 = (pos @ q.T + rng.normal(size=3) * 3.0)[perm]
    z2 = z[perm]
    e1 = energy(model, z2, pos2)
    check("rotation + translation + permutation (float32)", abs(e1 - e0) < 1e-4 * max(1.0, abs(e0)),
          f"E {e0:.6f} vs {e1:.6f}, |ΔE| {abs(e1 - e0):.2e}")
    d0, d1 = energy(model64, z, pos, dtype), energy(model64, z2, pos2, dtype)
    check("rotation + translation + permutation (float64)", abs(d1 - d0) < 1e-10 * max(1.0, abs(d0)),
          f"|ΔE| {abs(d1 - d0):.2e}")
    e_ref = energy(model, z, pos * np.array([1.0, 1.0, -1.0]))
    check("mirror image (distances only)", abs(e_ref - e0) < 1e-4 * max(1.0, abs(e0)), f"|ΔE| {abs(e_ref - e0):.2e}")
    e_moved = energy(model, z, pos + np.array([[0.0, 0.0, 0.3]] + [[0.0, 0.0, 0.0]] * (len(z) - 1)))
    check("sensitive to geometry (moving one atom changes E)", abs(e_moved - e0) > 1e-5, f"|ΔE| {abs(e_moved - e0):.2e}")

    # Padding: the molecule alone and in a batch with a larger molecule give the same energy.
    zb = rng.choice([1, 6, 7, 8], size=14)
    pb = rng.normal(size=(14, 3)) * 1.5
    Z = torch.zeros(2, 14, dtype=torch.long)
    R = torch.zeros(2, 14, 3)
    Z[0, :9], R[0, :9] = torch.tensor(z), torch.tensor(pos, dtype=torch.float32)
    Z[1], R[1] = torch.tensor(zb), torch.tensor(pb, dtype=torch.float32)
    eb = model(Z, R).detach()
    check("zero padding in a batch", abs(float(eb[0]) - e0) < 1e-4 * max(1.0, abs(e0))
          and abs(float(eb[1]) - energy(model, zb, pb)) < 1e-4 * max(1.0, abs(float(eb[1]))),
          f"{float(eb[0]):.6f} vs {e0:.6f}")

    # Cutoff: two atoms just inside and just outside r_c interact (almost) not at all; the
    # energy goes smoothly to the value of the separated atoms.
    def pair(r):
        return energy(model64, np.array([6, 8]), np.array([[0.0, 0, 0], [r, 0, 0]]), dtype)
    apart = energy(model64, np.array([6]), np.zeros((1, 3)), dtype) + energy(model64, np.array([8]), np.zeros((1, 3)), dtype)
    check("cosine cutoff: no interaction beyond 5 Å", abs(pair(5.2) - apart) < 1e-12 and abs(pair(5.0 - 1e-4) - apart) < 1e-6,
          f"E(5.2 Å) − E(apart) {pair(5.2) - apart:.1e}, E(4.9999 Å) − E(apart) {pair(5.0 - 1e-4) - apart:.1e}")
    check("… and an interaction within it", abs(pair(1.2) - apart) > 1e-6, f"E(1.2 Å) − E(apart) {pair(1.2) - apart:.2e}")

    # Building blocks.
    check("ssp(0) = 0", abs(float(shifted_softplus(torch.tensor(0.0)))) < 1e-7, "")
    n = sum(p.numel() for p in model.parameters())
    check("parameter count", 400_000 < n < 500_000, f"{n}")

    # Baseline: exact on data that is a sum of per-element energies.
    b_true = {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0}
    mols = []
    for k in range(40):
        zz = rng.choice([1, 6, 7, 8], size=int(rng.integers(3, 12)))
        mols.append(Molecule(f"m{k}", zz, np.zeros((len(zz), 3)), sum(b_true[int(a)] for a in zz), ""))
    fit = ElementBaseline.fit(mols)
    check("per-element least squares", all(abs(fit.b[SYMBOLS[k]] - v) < 1e-8 for k, v in b_true.items()),
          ", ".join(f"{s} {v:.4f}" for s, v in fit.b.items()))

    # The mean readout (intensive properties): the same weights, the mean over the real atoms.
    model_mean = SchNet(aggregation="mean").eval()
    model_mean.load_state_dict(model.state_dict())
    model64_mean = SchNet(aggregation="mean").to(dtype).eval()
    model64_mean.load_state_dict(model.state_dict())
    m0 = energy(model_mean, z, pos)
    check("mean readout = sum / number of atoms", abs(m0 - e0 / len(z)) < 1e-5 * max(1.0, abs(m0)),
          f"mean {m0:.6f}, sum/n {e0 / len(z):.6f}")
    m1 = energy(model_mean, z2, pos2)
    check("mean readout: rotation + translation + permutation (float32)", abs(m1 - m0) < 1e-5 * max(1.0, abs(m0)),
          f"{m0:.6f} vs {m1:.6f}")
    md0, md1 = energy(model64_mean, z, pos, dtype), energy(model64_mean, z2, pos2, dtype)
    check("mean readout: rotation + translation + permutation (float64)", abs(md1 - md0) < 1e-12 * max(1.0, abs(md0)),
          f"|ΔP| {abs(md1 - md0):.2e}")
    # Two copies of ethanol 20 Å apart (> r_c) as one "molecule": the mean is that of one
    # copy, the sum twice it. The second copy turned and permuted, to be sure.
    far = np.array([20.0, 0.0, 0.0])
    zd, pd = np.concatenate([z, z2]), np.concatenate([pos, pos2 - pos2.mean(0) + pos.mean(0) + far])
    md2 = energy(model64_mean, zd, pd, dtype)
    ed, ed2 = energy(model64, z, pos, dtype), energy(model64, zd, pd, dtype)
    check("mean readout: a duplicate beyond the cutoff leaves it unchanged", abs(md2 - md0) < 1e-10 * max(1.0, abs(md0)),
          f"{md0:.8f} vs {md2:.8f} (sum readout: {ed:.6f} → {ed2:.6f}, ratio {ed2 / ed:.6f})")
    check("sum readout: the duplicate doubles it", abs(ed2 - 2 * ed) < 1e-10 * max(1.0, abs(ed)), f"ratio {ed2 / ed:.8f}")
    mb = model_mean(Z, R).detach()
    check("mean readout: zero padding in a batch (padding not counted)",
          abs(float(mb[0]) - m0) < 1e-5 * max(1.0, abs(m0))
          and abs(float(mb[1]) - energy(model_mean, zb, pb)) < 1e-5 * max(1.0, abs(float(mb[1]))),
          f"{float(mb[0]):.6f} vs {m0:.6f}")
    check("mean and sum models share one state dict", set(model_mean.state_dict()) == set(model.state_dict()), "")
    mfit = MeanBaseline.fit(mols)
    mean_true = float(np.mean([x.value for x in mols]))
    check("mean baseline: the training-set mean, stored as {'mean': b}",
          set(mfit.b) == {"mean"} and abs(mfit.b["mean"] - mean_true) < 1e-9
          and np.allclose(MeanBaseline(dict(mfit.b)).predict(mols[:3]), mean_true), f"{mfit.b}")

    # The default aggregation and unit from dataset.json (qdf's format), sum without it.
    folder = f"/tmp/schnet-self-test-{os.getpid()}"
    os.makedirs(folder)
    try:
        found = [dataset_defaults(folder)]
        for kind, unit in (("intensive", "eV"), ("extensive", "bohr^3")):
            with open(os.path.join(folder, "dataset.json"), "w") as f:
                f.write('{\n  "format": "qdf-dataset 1",\n  "source": "",\n  "properties": [\n'
                        f'    {{"name": "x", "meaning": "", "unit": "{unit}", "kind": "{kind}"}}\n  ]\n}}\n')
            found.append(dataset_defaults(folder))
    finally:
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        os.rmdir(folder)
    check("aggregation and unit from dataset.json", found[0] == {}
          and (found[1]["aggregation"], found[1]["unit"]) == ("mean", "eV")
          and (found[2]["aggregation"], found[2]["unit"]) == ("sum", "bohr^3"),
          "none → default; " + "; ".join(f"{d['kind']} → {d['aggregation']}, {d['unit']}" for d in found[1:]))

    # Budget parsing and the schedule.
    check("budget suffixes", [parse_budget(s) for s in ("90", "90s", "30m", "1.5h")] == [90, 90, 1800, 5400], "")
    a = dict(lr=5e-4, lr_floor=0.0)
    check("cosine schedule", abs(cosine_lr(a, 0, 100) - 5e-4) < 1e-12 and abs(cosine_lr(a, 50, 100) - 2.5e-4) < 1e-12
          and cosine_lr(a, 100, 100) == 0.0, "")

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description="SchNet peer: train on a QDF-text data set for a wall-clock budget.")
    p.add_argument("dataset", nargs="?", help="folder with train.txt, val.txt, test.txt")
    p.add_argument("out", nargs="?", help="output folder")
    p.add_argument("--resume", metavar="OUT_DIR", help="continue the run in OUT_DIR with the budget left")
    p.add_argument("--self-test", action="store_true", help="check invariances of the model, then exit")
    p.add_argument("--extra", action="append", default=[], metavar="FILE",
                   help="another QDF-text file to predict at the end (repeatable)")
    p.add_argument("--budget", help="wall-clock training budget, e.g. 90s, 30m, 2h (default 30m)")
    p.add_argument("--budget-clock", choices=("wall", "cpu"),
                   help="what the budget counts: elapsed seconds (wall) or this process's CPU seconds, "
                        "all threads (cpu), for runs that share a machine (default wall)")
    p.add_argument("--seed", type=int, help="seed of everything (default 1)")
    p.add_argument("--threads", type=int, help="torch threads (default 2)")
    p.add_argument("--features", type=int, help="atom features (default 128)")
    p.add_argument("--interactions", type=int, help="interaction blocks (default 6)")
    p.add_argument("--gaussians", type=int, help="radial basis functions on [0, cutoff] (default 50)")
    p.add_argument("--cutoff", type=float, help="cutoff radius in Å (default 5)")
    p.add_argument("--gamma", type=float, help="width γ of the Gaussians in Å^-2 (default 10)")
    p.add_argument("--readout-hidden", type=int, help="hidden width of the atom-wise output (default 64)")
    p.add_argument("--lr", type=float, help="initial learning rate (default 5e-4)")
    p.add_argument("--lr-floor", type=float, help="learning rate at the end of the budget (default 0)")
    p.add_argument("--batch", type=int, help="molecules per batch (default 32)")
    p.add_argument("--eval-batch", type=int, help="molecules per batch when predicting (default 100)")
    p.add_argument("--aggregation", choices=AGGREGATIONS,
                   help="readout over the atoms: sum (extensive properties; per-element baseline) or mean "
                        "(intensive ones: μ, HOMO, LUMO, gap; the training-set mean as baseline). Default: "
                        "from DATASET_DIR/dataset.json (intensive → mean, extensive → sum), else sum")
    p.add_argument("--unit", help="unit of the property, for the logs and file headers (default: from "
                                  "DATASET_DIR/dataset.json, else eV)")
    cli = p.parse_args()
    if cli.self_test:
        torch.set_num_threads(1)
        sys.exit(self_test())
    run(cli)


if __name__ == "__main__":
    main()
