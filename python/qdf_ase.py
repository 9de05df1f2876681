"""An ASE calculator backed by qdf-swift.

    from ase.build import molecule
    from qdf_ase import QDFCalculator

    atoms = molecule("CH3CH2OH")
    atoms.calc = QDFCalculator()            # the bundled model; QDFCalculator(model="m.safetensors")
    print(atoms.get_potential_energy())     # eV: the model's property (the bundled model: atomization energy)

One long-lived `qdf predict - --format jsonl --input-format extxyz` process serves every
calculation (no start-up per molecule): each call writes one extended-XYZ frame to its
standard input and reads one JSON line back. The chemistry checks of `qdf predict` apply:
a charged, open-shell or implausible molecule raises `QDFCalculatorError` with qdf's
message (and the process is restarted for the next call); pass e.g.
`extra_args=["--allow-charged"]` to override. Only the energy is provided (QDF predicts
no forces). Needs ASE (pip install ase) and the `qdf` executable (on the PATH, or give
`qdf="/path/to/qdf"`, or set $QDF).
"""
import json
import os
import subprocess
import threading
from collections import deque

from ase.calculators.calculator import Calculator, all_changes


class QDFCalculatorError(RuntimeError):
    """qdf refused a molecule or stopped; the message is qdf's."""


class QDFCalculator(Calculator):
    implemented_properties = ["energy"]

    def __init__(self, qdf=None, model=None, extra_args=(), **kwargs):
        super().__init__(**kwargs)
        self.qdf = qdf or os.environ.get("QDF", "qdf")
        self.model = model
        self.extra_args = list(extra_args)
        self.process = None
        self.count = 0
        self._stderr = deque(maxlen=50)

    # The qdf process -----------------------------------------------------------------
    def _start(self):
        cmd = [self.qdf, "predict", "-", "--format", "jsonl", "--input-format", "extxyz"]
        if self.model:
            cmd += ["--model", self.model]
        cmd += self.extra_args
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self._stderr.clear()
        # Drain standard error (warnings, the summary) so that the pipe never fills.
        def drain(stream, lines):
            for line in stream:
                lines.append(line.rstrip("\n"))
        self._drain = threading.Thread(target=drain, args=(self.process.stderr, self._stderr), daemon=True)
        self._drain.start()

    def close(self):
        """Ends the qdf process (also done when the calculator is garbage-collected)."""
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except Exception:
                self.process.kill()
            self.process = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _fail(self):
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self._drain.join(timeout=5)
        errors = [l for l in self._stderr if l.startswith("error:")] or list(self._stderr)[-3:]
        self.process = None
        raise QDFCalculatorError("; ".join(errors) or "qdf stopped without a message")

    # ASE -------------------------------------------------------------------------------
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.count += 1
        symbols = self.atoms.get_chemical_symbols()
        frame = [str(len(symbols)), f"Properties=species:S:1:pos:R:3 id=ase-{self.count}"]
        frame += [f"{s} {x:.10f} {y:.10f} {z:.10f}" for s, (x, y, z) in zip(symbols, self.atoms.positions)]
        charge = self.atoms.info.get("charge")
        if charge:
            frame[1] += f" charge={int(charge)}"
        try:
            self.process.stdin.write("\n".join(frame) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self._fail()
        line = self.process.stdout.readline()
        if not line:
            self._fail()
        row = json.loads(line)
        if row.get("unit") not in ("eV", ""):
            raise QDFCalculatorError(f"the model predicts {row.get('property')} in {row.get('unit')}, not an energy in eV")
        if isinstance(row["predicted"], list):
            raise QDFCalculatorError(f"the model has {len(row['predicted'])} outputs ({row.get('property')}); an energy model has one")
        self.results["energy"] = float(row["predicted"])
