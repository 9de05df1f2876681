#!/usr/bin/env python3
"""Writes the chemistry fixtures of ChemistryCheckTests.swift with the tools chemists use.

Needs RDKit and ASE (pip install rdkit ase) and Open Babel's `obabel` (Debian: openbabel).
Run in this folder: python3 make_fixtures.py. The files are committed; the tests need
none of these tools. Versions used: see VERSIONS.txt (written by this script).
"""
import subprocess, numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem
import ase, ase.io
from ase.units import Bohr


def embed(smiles, name, seed=42, optimize=True):
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(m, randomSeed=seed)
    if optimize:
        AllChem.MMFFOptimizeMolecule(m)
    m.SetProp("_Name", name)
    return m


def obabel(*args):
    subprocess.run(["obabel", *args], check=True, capture_output=True)


aspirin = embed("CC(=O)Oc1ccccc1C(=O)O", "aspirin")
Chem.MolToMolFile(aspirin, "aspirin.sdf")                       # V2000
Chem.MolToMolFile(aspirin, "aspirin_v3000.sdf", forceV3000=True)  # V3000
Chem.MolToXYZFile(aspirin, "aspirin.xyz")
Chem.MolToPDBFile(aspirin, "aspirin.pdb")
obabel("aspirin.sdf", "-O", "aspirin.mol2")
obabel("aspirin.sdf", "-O", "aspirin.cml")
obabel("aspirin.sdf", "-O", "aspirin_obabel.xyz")

# Aspirin in bohr (ASE): the same atoms, coordinates divided by 0.529 Å.
a = ase.io.read("aspirin.xyz")
a.positions = a.positions / Bohr
ase.io.write("aspirin_bohr.xyz", a, format="xyz", comment="aspirin in bohr")

# Two molecules in one mol2 and one multi-MODEL PDB (Open Babel).
benzene = embed("c1ccccc1", "benzene")
w = Chem.SDWriter("two.sdf")
w.write(aspirin); w.write(benzene); w.close()
obabel("two.sdf", "-O", "two.mol2")
obabel("two.sdf", "-O", "two.pdb")

# Benzene with its hydrogens removed (RDKit): C6, an even electron count.
bare = Chem.RemoveHs(benzene)
Chem.MolToXYZFile(bare, "benzene_noH.xyz")
# The phenyl radical: one hydrogen removed (odd electron count; RDKit writes M  RAD).
Chem.MolToMolFile(embed("[c]1ccccc1", "phenyl radical", optimize=False), "phenyl_radical.sdf")

# Acetate anion (M  CHG), its mol2 (Gasteiger charges summing to -1), an extended XYZ
# with charge=-1 (ASE); the glycine zwitterion (M  CHG +1 and -1).
acetate = embed("CC(=O)[O-]", "acetate")
Chem.MolToMolFile(acetate, "acetate.sdf")
obabel("acetate.sdf", "-O", "acetate.mol2")
ac = ase.io.read("acetate.sdf")
ac.info = {"charge": -1, "name": "acetate"}
ase.io.write("acetate.extxyz", ac, format="extxyz")
Chem.MolToMolFile(embed("[NH3+]CC(=O)[O-]", "glycine zwitterion"), "glycine_zwitterion.sdf")

# Methanethiol: sulfur, which the bundled model never learned.
Chem.MolToXYZFile(embed("CS", "methanethiol"), "methanethiol.xyz")

# Methane with one hydrogen at x = 1e30 Å, and ethane with two atoms 0.3 Å apart (ASE).
me = ase.Atoms("CH4", positions=[[0, 0, 0], [0.629, 0.629, 0.629], [-0.629, -0.629, 0.629],
                                  [-0.629, 0.629, -0.629], [1e30, -0.629, -0.629]])
ase.io.write("methane_far_atom.extxyz", me, format="extxyz")
et = ase.Atoms("C2H6", positions=[[0, 0, 0], [1.54, 0, 0], [-0.36, 1.03, 0], [-0.36, -0.51, 0.89],
                                   [-0.36, -0.51, -0.89], [1.9, 1.03, 0], [1.9, -0.51, 0.89], [0.2, 0.1, 0.1]])
ase.io.write("ethane_close_atoms.xyz", et, format="xyz", comment="ethane close atoms")

# A tab inside the comment line, which is the molecule's id (ASE's plain XYZ writer).
methanol = ase.Atoms("CH3OH", positions=[[-0.047, 0.664, 0], [-1.086, 0.975, 0], [0.437, 1.081, 0.890],
                                         [0.437, 1.081, -0.890], [0.047, -0.758, 0], [-0.866, -1.080, 0]])
ase.io.write("methanol_tab.xyz", methanol, format="xyz", comment="methanol\tbatch 7")

# SMILES (Open Babel) and a binary file named .xyz.
obabel("-:c1ccccc1 benzene", "-osmi", "-O", "benzene.smi")
with open("binary.xyz", "wb") as f:
    f.write(bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(256)) * 2)

with open("VERSIONS.txt", "w") as f:
    ver = subprocess.run(["obabel", "-V"], capture_output=True, text=True).stdout.strip()
    f.write(f"RDKit {rdBase.rdkitVersion}\nASE {ase.__version__}\n{ver}\n")
