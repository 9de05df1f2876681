#!/usr/bin/env python3
"""Frozen atomic 1s cores for Li–Ne (Z = 3…10), from spherically averaged B3LYP atoms.

What it does
    For each element Li…Ne, runs PySCF's spherically averaged, fractionally occupied
    restricted Kohn-Sham atom (pyscf.scf.atom_ks.AtomSphericAverageRKS — the routine behind
    the SAD guess — with the non-relativistic spin-restricted spherical configurations
    pyscf.data.elements.NRSRHFS_CONFIGURATION) at B3LYP/6-31G(2df,p), QM9's level of theory.
    The 1s orbital is the lowest-energy MO built from s functions only. It is re-expanded
    over the PRIMITIVE s Gaussians of the basis:
        φ_1s(r) = Σ_p d_p exp(−α_p r²),  r in bohr, α in bohr⁻², ∫ φ² d³r = 1,
    so that the core density is ρ_core(r) = 2 φ_1s(r)².  d_p already includes the contraction
    coefficient, the primitive radial normalisation and the 1/√(4π) of the s harmonic.

Checks (printed; the script fails if one does not hold)
    * the expansion against mol.eval_gto('GTOval', points) · MO coefficients at 50 points
      (r = 0…4 bohr, random directions): max relative error < 1e-6;
    * radial integral ∫ 4π r² 2φ² dr = 2 (to 1e-6), numerically, and ⟨φ|φ⟩ from the overlap matrix.
    Also prints ρ_core(0) = 2φ(0)² and ρ_core(0.3 Å) in e/bohr³.

Usage
    nice -n 10 env OMP_NUM_THREADS=1 python3 scripts/density/atomic_cores.py [--out PATH] [--basis 6-31G(2df,p)] [--xc b3lyp]

Inputs   none (the basis set and functional are PySCF's built-ins).
Output   Sources/QuantumDeepField/Molecules/AtomicCoreTable.swift (default; relative to the repository
         root): a generated `extension AtomicCore { static let table: [Int: (exponents:, coefficients:)] }`.
         It must sit in the module of AtomicCore (QuantumDeepField), whose code reads `table`.
"""
import argparse
import os
import sys

import numpy as np

ELEMENTS = ["Li", "Be", "B", "C", "N", "O", "F", "Ne"]


def core_orbital(symbol, basis, xc):
    from pyscf import gto
    from pyscf.scf import atom_ks

    mol = gto.M(atom=[(symbol, (0.0, 0.0, 0.0))], basis=basis, spin=None, verbose=0)
    mol.spin = mol.nelectron % 2
    mol.build()
    res = atom_ks.get_atm_nrks(mol, xc=xc)
    e_tot, mo_energy, mo_coeff, mo_occ = res[mol.atom_symbol(0)]
    # AOs of s shells
    s_ao = []
    ao_of_shell = []
    off = 0
    for ib in range(mol.nbas):
        l = mol.bas_angular(ib)
        n = (2 * l + 1) * mol.bas_nctr(ib)
        if l == 0:
            s_ao.extend(range(off, off + n))
            ao_of_shell.append((ib, off))
        off += n
    s_ao = np.array(s_ao)
    other = np.setdiff1d(np.arange(mol.nao), s_ao)
    is_s = [np.abs(mo_coeff[other, k]).max() < 1e-10 and np.abs(mo_coeff[s_ao, k]).max() > 1e-6
            for k in range(mo_coeff.shape[1])]
    cand = [k for k in range(len(mo_energy)) if is_s[k]]
    k1s = min(cand, key=lambda k: mo_energy[k])
    c = mo_coeff[:, k1s].copy()
    if c[s_ao[0]] < 0:
        c = -c  # φ(0) > 0
    # primitive expansion: χ_shell(r) = Σ_p ctr[p] exp(−α_p r²) · Y00, Y00 = 1/√(4π)
    # (PySCF's _libcint_ctr_coeff includes the primitive normalisation gto_norm(0, α)).
    y00 = 1.0 / np.sqrt(4.0 * np.pi)
    prims = {}
    for ib, off in ao_of_shell:
        alphas = mol.bas_exp(ib)
        ctr = mol._libcint_ctr_coeff(ib)  # (nprim, nctr)
        for j in range(ctr.shape[1]):
            for p, a in enumerate(alphas):
                prims[a] = prims.get(a, 0.0) + c[off + j] * ctr[p, j] * y00
    alphas = np.array(sorted(prims, reverse=True))
    d = np.array([prims[a] for a in alphas])
    return mol, e_tot, mo_energy[k1s], mo_occ[k1s], c, alphas, d


def phi(alphas, d, r):
    r = np.asarray(r, dtype=float)
    return np.exp(-np.outer(r * r, alphas)) @ d


def main():
    import pyscf
    from pyscf import lib
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "Sources", "QuantumDeepField", "Molecules", "AtomicCoreTable.swift"))
    ap.add_argument("--basis", default="6-31G(2df,p)")
    ap.add_argument("--xc", default="b3lyp")
    args = ap.parse_args()

    rng = np.random.default_rng(20)
    entries = []
    ok = True
    print("Z  el  E_atom/Ha       eps_1s/Ha   occ  nprim  max_rel_err  radial_int(2φ²)  <φ|φ>(S)     rho_core(0)   rho_core(0.3Å)  [e/bohr³]")
    for z, el in enumerate(ELEMENTS, start=3):
        mol, e_tot, eps, occ, c, alphas, d = core_orbital(el, args.basis, args.xc)
        # (a) point check against eval_gto · C
        rr = np.linspace(0.0, 4.0, 50)
        u = rng.normal(size=(50, 3))
        u /= np.linalg.norm(u, axis=1)[:, None]
        pts = rr[:, None] * u
        ref = mol.eval_gto("GTOval", pts) @ c
        mine = phi(alphas, d, rr)
        rel_err = np.max(np.abs(mine - ref) / np.abs(ref))
        # (b) radial integral ∫ 4π r² 2φ² dr, dense trapezoid on r ∈ [0, 30] bohr
        r = np.linspace(0.0, 30.0, 600001)
        f = 4.0 * np.pi * r * r * 2.0 * phi(alphas, d, r) ** 2
        radial = np.trapz(f, r) if hasattr(np, "trapz") else np.trapezoid(f, r)
        # analytic: ∫ e^{-(a+b) r²} d³r = (π/(a+b))^{3/2}
        ab = alphas[:, None] + alphas[None, :]
        norm_analytic = d @ ((np.pi / ab) ** 1.5) @ d
        norm_S = c @ mol.intor("int1e_ovlp") @ c
        rho0 = 2.0 * phi(alphas, d, [0.0])[0] ** 2
        rho03 = 2.0 * phi(alphas, d, [0.3 / lib.param.BOHR])[0] ** 2
        print("%-2d %-3s %-15.8f %-11.6f %-4.2f %-6d %-12.2e %-16.10f %-12.10f %-13.6f %-.6e"
              % (z, el, e_tot, eps, occ, len(alphas), rel_err, radial, norm_S, rho0, rho03))
        if not (rel_err < 1e-6 and abs(radial - 2.0) < 1e-6 and abs(norm_analytic - 1.0) < 1e-10):
            ok = False
            print("   CHECK FAILED for %s (analytic norm %.12f)" % (el, norm_analytic))
        entries.append((z, alphas, d))

    if not ok:
        sys.exit("checks failed; not writing %s" % args.out)

    def fmt(xs):
        return ", ".join("%.17g" % x for x in xs)

    lines = [
        "// Generated by scripts/density/atomic_cores.py (PySCF %s, spherically averaged R%s/%s atoms); do not edit."
        % (pyscf.__version__, args.xc.upper(), args.basis),
        "// Source: pyscf.scf.atom_ks.AtomSphericAverageRKS (fractional occupation, NRSRHFS configurations),",
        "// 1s = lowest s orbital, expanded over the basis's primitive s Gaussians; %s/%s, PySCF %s."
        % (args.xc.upper(), args.basis, pyscf.__version__),
        "extension AtomicCore {",
        "    /// Z → the 1s orbital φ(r) = Σ_p d_p exp(−α_p r²) (r in bohr, α in bohr⁻², ∫φ² d³r = 1).",
        "    static let table: [Int: (exponents: [Double], coefficients: [Double])] = [",
    ]
    for z, alphas, d in entries:
        lines.append("        %d: (exponents: [%s], coefficients: [%s])," % (z, fmt(alphas), fmt(d)))
    lines += ["    ]", "}", ""]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
