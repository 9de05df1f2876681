"""Energies of a few molecules through ASE and qdf-swift's bundled model.

    python3 python/example_ase.py            # qdf on the PATH, or QDF=.build/release/qdf
"""
from ase.build import molecule
from qdf_ase import QDFCalculator

calc = QDFCalculator()
for name in ["CH4", "CH3CH2OH", "C6H6", "CH3COOH"]:
    atoms = molecule(name)
    atoms.calc = calc
    print(f"{name:10s} {atoms.get_potential_energy():10.4f} eV  (atomization energy)")
calc.close()
