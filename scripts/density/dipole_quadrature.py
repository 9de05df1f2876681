#!/usr/bin/env python3
"""How well the dipole readout's quadrature can hold a molecule's dipole: |μ| of a DFT density
sampled on QDF's field grid, against QM9's μ.

What it does
    For each molecule of MOLECULES_FILE (QDF text format whose property is QM9's μ in debye,
    e.g. from `qdf dataset qm9 --property mu`), runs restricted Kohn-Sham B3LYP/6-31G(2df,p)
    (QM9's level of theory) with PySCF and computes
      mu_pyscf   |μ| of the whole DFT density (PySCF's dip_moment): the level-of-theory check
      mu_grid    |μ| the dipole readout (docs/model.md §20) gives when the model's density is
                 the DFT density sampled on the field grid (§2: 56 points within 0.75 Å of each
                 atom), normalized as the model's is (ρ_i = N_e ρ(r_i) / Σ_j ρ(r_j)):
                     μ = Σ_a (Z_a − c_a)(R_a − O) − κ Σ_i ρ_i (r_i − O),  κ = (N_e − N_core)/N_e
    and prints a TSV row per molecule, then the MAEs against QM9's μ, including the best the
    readout can do with the DFT density's shape on that grid: the same sum with κ replaced by
    the one scale over all molecules that minimizes the MAE (scanned from 0 to 1.5).

    The field grid is the one of docs/model.md §2 (radius 0.75 Å, interval 0.3 Å, axis as
    numpy.arange(-r, r + 1e-3, h), the centre point left out, no de-duplication); the
    readout's formula is §20's. Neither depends on the model's parameters.

Usage
    nice -n 10 env OMP_NUM_THREADS=1 python3 scripts/density/dipole_quadrature.py MOLECULES_FILE \
        [--first N] [--ids ID,ID,...] [--basis 6-31G(2df,p)] [--xc b3lyp] [--density-fit]

Needs PySCF (`pip install pyscf==2.14.0`) and numpy.
"""
import argparse
import math
import sys
import time

import numpy as np

DEBYE_PER_E_ANGSTROM = 4.803204
BOHR = 0.52917721092  # Å
Z = {"H": 1, "He": 2, "Li": 3, "Be": 4, "B": 5, "C": 6, "N": 7, "O": 8, "F": 9, "Ne": 10}


def parse_qdf(path):
    """(id, [(symbol, x, y, z)], μ) per block of a QDF text file; exits naming the block on error."""
    text = open(path).read().strip()
    for n, block in enumerate(text.split("\n\n"), 1):
        lines = [l for l in block.strip().split("\n") if l.strip()]
        try:
            atoms = [(p[0], float(p[1]), float(p[2]), float(p[3])) for p in (l.split() for l in lines[1:-1])]
            mu = float(lines[-1].split()[0])
        except (IndexError, ValueError):
            sys.exit("%s: block %d (%s): not an id, atom lines and a value" % (path, n, lines[0] if lines else "empty"))
        if any(s not in Z for s, *_ in atoms):
            sys.exit("%s: block %d (%s): an element outside H–Ne" % (path, n, lines[0]))
        yield lines[0].strip(), atoms, mu


def sphere(radius=0.75, interval=0.3):
    """The grid offsets S of docs/model.md §2, x outermost, z innermost (Å)."""
    axis = np.arange(-radius, radius + 1e-3, interval)
    pts = [(x, y, z) for x in axis for y in axis for z in axis
           if x * x + y * y + z * z <= radius * radius and (x, y, z) != (0.0, 0.0, 0.0)]
    return np.array(pts)


def field_points(atoms):
    """The field points r_i = R_a + S_s of docs/model.md §2, atom by atom (Å)."""
    R = np.array([[x, y, z] for _, x, y, z in atoms])
    return (R[:, None, :] + sphere()[None, :, :]).reshape(-1, 3)


def readout_terms(atoms, points, rho):
    """(nuclear part Σ (Z − c)(R − O), electronic sum Σ ρ_i (r_i − O) with ρ normalized to N_e, κ)
    for the density `rho` at the field points `points` (Å)."""
    R = np.array([[x, y, z] for _, x, y, z in atoms])
    z = np.array([Z[s] for s, *_ in atoms], dtype=float)
    core = np.array([2.0 if Z[s] > 2 else 0.0 for s, *_ in atoms])
    origin = (z[:, None] * R).sum(0) / z.sum()
    n_e = z.sum()
    w = n_e * rho / rho.sum()
    nuclear = ((z - core)[:, None] * (R - origin)).sum(0)
    electronic = (w[:, None] * (points - origin)).sum(0)
    return nuclear, electronic, (n_e - core.sum()) / n_e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("molecules")
    ap.add_argument("--first", type=int)
    ap.add_argument("--ids")
    ap.add_argument("--basis", default="6-31G(2df,p)")
    ap.add_argument("--xc", default="b3lyp")
    ap.add_argument("--density-fit", action="store_true")
    args = ap.parse_args()
    from pyscf import dft, gto

    mols = list(parse_qdf(args.molecules))
    if args.ids:
        have = {m[0]: m for m in mols}
        missing = [i for i in args.ids.split(",") if i not in have]
        if missing:
            sys.exit("%s: no molecule %s" % (args.molecules, ",".join(missing)))
        mols = [have[i] for i in args.ids.split(",")]
    if args.first is not None:
        mols = mols[:args.first]

    rows = []
    print("id\tatoms\tmu_qm9_D\tmu_pyscf_D\tmu_grid_D\tscf_s", flush=True)
    for mol_id, atoms, mu_qm9 in mols:
        t0 = time.time()
        mol = gto.M(atom=[(s, (x, y, z)) for s, x, y, z in atoms], unit="Angstrom", basis=args.basis, verbose=0)
        mf = dft.RKS(mol)
        mf.xc = args.xc
        if args.density_fit:
            mf = mf.density_fit()
        mf.kernel()
        if not mf.converged:
            print("%s: SCF did not converge; left out" % mol_id, file=sys.stderr)
            continue
        dm = mf.make_rdm1()
        mu_pyscf = float(np.linalg.norm(mf.dip_moment(unit="Debye", verbose=0)))
        points = field_points(atoms)
        ao = dft.numint.eval_ao(mol, points / BOHR)
        rho = dft.numint.eval_rho(mol, ao, dm)
        nuclear, electronic, kappa = readout_terms(atoms, points, rho)
        mu_grid = float(np.linalg.norm(nuclear - kappa * electronic)) * DEBYE_PER_E_ANGSTROM
        rows.append((mol_id, len(atoms), mu_qm9, mu_pyscf, mu_grid, nuclear, electronic))
        print("%s\t%d\t%.4f\t%.4f\t%.4f\t%.1f" % (mol_id, len(atoms), mu_qm9, mu_pyscf, mu_grid, time.time() - t0), flush=True)

    if not rows:
        sys.exit("no molecule converged")
    # The one scale s in μ = nuclear − s·electronic that minimizes the MAE over all molecules
    # (|μ| is not linear in s, so the scale is scanned).
    def mae(scale):
        return sum(abs(np.linalg.norm(n - scale * e) * DEBYE_PER_E_ANGSTROM - q) for _, _, q, _, _, n, e in rows) / len(rows)
    scales = np.linspace(0.0, 1.5, 1501)
    best = min(scales, key=mae)
    n = len(rows)
    print("# %d molecules, %s/%s%s" % (n, args.xc.upper(), args.basis, "+DF" if args.density_fit else ""))
    print("# MAE against QM9's mu (D): PySCF's whole density %.4f; the readout on the field grid %.4f;"
          " with the best scale of the electronic sum (%.3f instead of kappa) %.4f; QM9 mean |mu| %.4f"
          % (sum(abs(r[3] - r[2]) for r in rows) / n, sum(abs(r[4] - r[2]) for r in rows) / n, best, mae(best),
             sum(r[2] for r in rows) / n))


if __name__ == "__main__":
    main()
