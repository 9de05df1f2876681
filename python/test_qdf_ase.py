"""Tests of qdf_ase.QDFCalculator against `qdf predict` on files (run by scripts/test-python).

Needs ASE and the qdf executable ($QDF). Prints the throughput of the calculator and of
`qdf predict` on the same molecules, in one run.
"""
import json, os, subprocess, sys, tempfile, time

import ase.io
from ase.build import molecule
from qdf_ase import QDFCalculator, QDFCalculatorError

QDF = os.environ.get("QDF", "qdf")
here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "Tests", "QuantumDeepFieldTests", "Fixtures", "chemistry")
failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def predict_file(path):
    out = subprocess.run([QDF, "predict", path, "--format", "jsonl"], capture_output=True, text=True, check=True)
    return [json.loads(l) for l in out.stdout.splitlines()]


calc = QDFCalculator(qdf=QDF)

# 1. Same energy as `qdf predict` on the file ASE reads.
aspirin = ase.io.read(os.path.join(fixtures, "aspirin.sdf"))
aspirin.calc = calc
e = aspirin.get_potential_energy()
ref = predict_file(os.path.join(fixtures, "aspirin.sdf"))[0]["predicted"]
check(abs(e - ref) < 1e-4, f"aspirin through ASE {e:.6f} eV = qdf predict on the SDF {ref:.6f} eV")

# 2. Several molecules through one process; the results follow the geometry.
names = ["CH4", "C2H6", "CH3CH2OH", "C6H6", "CH3COOH", "HCOOH", "CH3CN", "H2O", "NH3", "HCN"]
mols = [molecule(n) for n in names]
energies = []
for m in mols:
    m.calc = calc
    energies.append(m.get_potential_energy())
pid = calc.process.pid
check(len(set(round(x, 6) for x in energies)) == len(names), f"{len(names)} molecules, {len(names)} different energies")
m = mols[3].copy(); m.calc = calc
m.positions[0] += [0.05, 0, 0]
check(abs(m.get_potential_energy() - energies[3]) > 1e-5, "moving an atom changes the energy")
check(calc.process.pid == pid, "one qdf process for every calculation")

# 3. A refused molecule raises qdf's message; the next call works again.
bare = ase.io.read(os.path.join(fixtures, "phenyl_radical.sdf"))
bare.calc = calc
try:
    bare.get_potential_energy()
    check(False, "the phenyl radical is refused")
except QDFCalculatorError as err:
    check("odd number" in str(err), f"the phenyl radical is refused: {err}")
m = molecule("CH4"); m.calc = calc
check(abs(m.get_potential_energy() - energies[0]) < 1e-6, "after a refusal, the next molecule is predicted")

# 4. Orientation: benzene turned by 37° about (1, 2, 3). Placed as given (--frame input) the
#    energy moves; in the canonical frame, the bundled model's own (a model trained with
#    --frame canonical applies it by itself), it is the same.
benzene = molecule("C6H6")
turned = benzene.copy()
turned.rotate(37, (1, 2, 3), center="COM")
as_input = QDFCalculator(qdf=QDF, extra_args=("--frame", "input"))
benzene.calc = as_input
turned.calc = as_input
as_given = abs(benzene.get_potential_energy() - turned.get_potential_energy())
as_input.close()
benzene.calc = calc
turned.calc = calc
in_frame = abs(benzene.get_potential_energy() - turned.get_potential_energy())
check(as_given > 1e-3 and in_frame < 1e-4,
      f"benzene turned by 37°: energy changes by {as_given:.4f} eV as given, {in_frame:.2e} eV in the canonical frame")

# 5. Throughput: the calculator (one molecule at a time) against qdf predict on a file.
batch = [molecule(n) for _ in range(50) for n in names]
t = time.time()
for a in batch:
    a.calc = calc
    a.get_potential_energy()
calc_rate = len(batch) / (time.time() - t)
calc.close()
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "batch.xyz")
    for i, a in enumerate(batch):
        a.info = {"id": f"m{i}"}
    ase.io.write(path, batch, format="extxyz")
    t = time.time()
    rows = predict_file(path)
    file_rate = len(rows) / (time.time() - t)
check(len(rows) == len(batch), f"qdf predict on the file: {len(rows)} rows")
print(f"throughput: calculator {calc_rate:.1f} molecules/s, qdf predict on a file {file_rate:.1f} molecules/s "
      f"(start-up included), ratio {calc_rate / file_rate:.2f}")

# The plain closing line CI reads: "python: N passed, N failed".
print(f"python: {checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
