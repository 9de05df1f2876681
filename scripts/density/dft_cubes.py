#!/usr/bin/env python3
"""DFT electron-density cubes for QDF molecules (PySCF).

What it does
    For each molecule of MOLECULES_FILE, runs a closed-shell restricted Kohn-Sham
    calculation (default B3LYP/6-31G(2df,p), QM9's level of theory; PySCF's "b3lyp" is
    the VWN-RPA variant, as in Gaussian) at the given geometry, and writes the electron
    density on a cube grid with pyscf.tools.cubegen.density.

Grid rule (same as the reference cubes in shared/reference/dft/)
    box = atoms' bounding box + MARGIN on every side (default 3.0 bohr, cubegen's default);
    points per axis n = ceil(box length / SPACING) (default spacing 0.1 Å = 0.18897 bohr,
    cubegen's `resolution`), endpoints included, so the actual step is length/(n-1).
    Values are the density in e/bohr^3; coordinates in the cube are in bohr.

Usage
    nice -n 10 env OMP_NUM_THREADS=1 python3 scripts/density/dft_cubes.py MOLECULES_FILE OUT_DIR \
        [--ids ID,ID,...] [--first N] [--basis 6-31G(2df,p)] [--xc b3lyp] \
        [--spacing-bohr B | --spacing-angstrom A] [--margin-bohr 3.0] [--gzip] \
        [--density-fit] [--grid-level L] [--conv-tol T]

Inputs
    MOLECULES_FILE: QDF text format (blocks separated by blank lines; line 1 = molecule id,
    then "Symbol x y z" lines in Å, last line = property value(s)), or an .xyz file
    (atom count, comment line = molecule id, "Symbol x y z" lines in Å; several frames allowed).

Outputs (in OUT_DIR)
    <id>.cube (or <id>.cube.gz with --gzip)  density cube, e/bohr^3
    <id>.xyz                                 the geometry used (Å), comment line = id
    timing.tsv                               id, atoms, basis functions, SCF seconds, energy (Hartree),
                                             converged, level of theory, cube seconds (appended)
    A molecule whose cube already exists is skipped (the script is resumable).
"""
import argparse
import gzip
import os
import shutil
import sys
import time

BOHR_PER_ANGSTROM = 1.0 / 0.52917721092  # PySCF's lib.param.BOHR


def parse_qdf(path):
    """Yields (id, [(symbol, x, y, z)]) from a QDF text file or an .xyz file (Å)."""
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f]
    if path.endswith(".xyz"):
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            n = int(lines[i].split()[0])
            mol_id = lines[i + 1].strip().split()[0] if lines[i + 1].strip() else "mol%d" % i
            atoms = []
            for l in lines[i + 2:i + 2 + n]:
                s, x, y, z = l.split()[:4]
                atoms.append((s, float(x), float(y), float(z)))
            yield mol_id, atoms
            i += 2 + n
        return
    block = []
    for l in lines + [""]:
        if l.strip():
            block.append(l.strip())
            continue
        if block:
            mol_id = block[0].split()[0]
            atoms = []
            for a in block[1:]:
                t = a.split()
                if len(t) == 4 and t[0][0].isalpha():
                    atoms.append((t[0], float(t[1]), float(t[2]), float(t[3])))
            yield mol_id, atoms
            block = []


def formula(atoms):
    from collections import Counter
    c = Counter(a[0] for a in atoms)
    order = [e for e in ("C", "H") if e in c] + sorted(e for e in c if e not in ("C", "H"))
    return "".join(e + (str(c[e]) if c[e] > 1 else "") for e in order)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("molecules")
    ap.add_argument("out_dir")
    ap.add_argument("--ids", default=None, help="comma-separated molecule ids to compute (default: all)")
    ap.add_argument("--first", type=int, default=None, help="only the first N molecules of the file")
    ap.add_argument("--basis", default="6-31G(2df,p)")
    ap.add_argument("--xc", default="b3lyp")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--spacing-bohr", "--resolution", dest="spacing_bohr", type=float, default=None,
                   help="cubegen resolution in bohr (default 0.1 Å = 0.188973 bohr)")
    g.add_argument("--spacing-angstrom", type=float, default=None)
    ap.add_argument("--margin-bohr", "--margin", dest="margin", type=float, default=3.0,
                    help="box margin around the atoms, bohr (cubegen default 3.0)")
    ap.add_argument("--gzip", action="store_true", help="write <id>.cube.gz")
    ap.add_argument("--conv-tol", type=float, default=1e-9)
    ap.add_argument("--max-memory", type=int, default=2000, help="PySCF max_memory, MB")
    ap.add_argument("--density-fit", action="store_true",
                    help="density fitting for J/K (PySCF's default auxiliary basis): 3-5x faster SCF, "
                         "densities within ~1e-4 relative; recorded in the level (+DF)")
    ap.add_argument("--grid-level", type=int, default=None, help="PySCF DFT integration grid level (default: PySCF's, 3)")
    args = ap.parse_args()

    from pyscf import gto, dft, lib
    from pyscf.tools import cubegen
    import pyscf

    if args.spacing_bohr is not None:
        spacing = args.spacing_bohr
    elif args.spacing_angstrom is not None:
        spacing = args.spacing_angstrom / lib.param.BOHR
    else:
        spacing = 0.1 / lib.param.BOHR

    os.makedirs(args.out_dir, exist_ok=True)
    mols = list(parse_qdf(args.molecules))
    if args.first is not None:
        mols = mols[:args.first]
    if args.ids:
        want = args.ids.split(",")
        have = dict(mols)
        missing = [i for i in want if i not in have]
        if missing:
            sys.exit("ids not in %s: %s" % (args.molecules, ",".join(missing)))
        mols = [(i, have[i]) for i in want]

    level = "R%s/%s" % (args.xc.upper(), args.basis) + ("+DF" if args.density_fit else "") \
        + ("" if args.grid_level is None else " grid %d" % args.grid_level)
    timing = os.path.join(args.out_dir, "timing.tsv")
    if not os.path.exists(timing):
        with open(timing, "w") as f:
            f.write("id\tatoms\tbasis_functions\tscf_seconds\tenergy_hartree\tconverged\tlevel\tcube_seconds\n")
    print("# PySCF %s, %s, spacing %.6f bohr, margin %.3f bohr, %d molecules -> %s"
          % (pyscf.__version__, level, spacing, args.margin, len(mols), args.out_dir), flush=True)

    for k, (mol_id, atoms) in enumerate(mols):
        cube = os.path.join(args.out_dir, mol_id + ".cube" + (".gz" if args.gzip else ""))
        if os.path.exists(cube):
            print("%s: exists, skipped" % mol_id, flush=True)
            continue
        mol = gto.M(atom=[(s, (x, y, z)) for s, x, y, z in atoms], unit="Angstrom",
                    basis=args.basis, charge=0, spin=0, verbose=0)
        mol.max_memory = args.max_memory
        mf = dft.RKS(mol)
        if args.density_fit:
            mf = mf.density_fit()
        if args.grid_level is not None:
            mf.grids.level = args.grid_level
        mf.xc = args.xc
        mf.conv_tol = args.conv_tol
        t0 = time.time()
        energy = mf.kernel()
        t_scf = time.time() - t0
        if not mf.converged:
            print("%s: WARNING SCF not converged" % mol_id, flush=True)
        t0 = time.time()
        tmp = os.path.join(args.out_dir, ".%s.cube.tmp" % mol_id)
        cubegen.density(mol, tmp, mf.make_rdm1(), resolution=spacing, margin=args.margin)
        if args.gzip:
            with open(tmp, "rb") as src, gzip.open(tmp + ".gz", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst)
            os.remove(tmp)
            tmp += ".gz"
        t_cube = time.time() - t0
        with open(os.path.join(args.out_dir, mol_id + ".xyz"), "w") as f:
            f.write("%d\n%s\n" % (len(atoms), mol_id))
            for s, x, y, z in atoms:
                f.write("%s %.10f %.10f %.10f\n" % (s, x, y, z))
        os.replace(tmp, cube)  # the cube appears only once complete (resumability)
        with open(timing, "a") as f:
            f.write("%s\t%d\t%d\t%.2f\t%.10f\t%s\t%s\t%.2f\n"
                    % (mol_id, mol.natm, mol.nao_nr(), t_scf, energy, mf.converged, level, t_cube))
        print("%s: %d/%d %s atoms=%d nao=%d E=%.8f Ha scf=%.1fs cube=%.1fs"
              % (mol_id, k + 1, len(mols), formula(atoms), mol.natm, mol.nao_nr(), energy, t_scf, t_cube),
              flush=True)


if __name__ == "__main__":
    main()
