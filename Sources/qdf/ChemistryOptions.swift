import ArgumentParser
import QuantumDeepField
import QDFFormats

/// The chemistry checks' overrides and the coordinate unit, shared by predict, density,
/// check and train.
struct ChemistryOptions: ParsableArguments {
    @Flag(help: "Predict molecules whose file records a net or formal charge (with a warning); the model learned neutral molecules.")
    var allowCharged = false

    @Flag(help: "Predict radicals and molecules with under-coordinated carbons (with a warning); the model learned closed-shell molecules.")
    var allowOpenShell = false

    @Flag(help: "Predict molecules with implausible geometries (atoms closer than 0.5 Å, bohr-like bond lengths, an atom with no neighbour within 3 Å), with a warning.")
    var allowGeometry = false

    @Option(help: "The unit of the input coordinates: angstrom or bohr (converted to Å).")
    var unit = "angstrom"

    func validate() throws {
        guard CoordinateUnit(name: unit) != nil else { throw ValidationError("--unit must be angstrom or bohr") }
    }

    /// The kinds of issues these flags allow.
    var allowed: Set<MoleculeIssue.Kind> {
        var s = Set<MoleculeIssue.Kind>()
        if allowCharged { s.insert(.charged) }
        if allowOpenShell { s.insert(.openShell) }
        if allowGeometry { s.formUnion([.atomsTooClose, .bohrUnits, .isolatedAtom]) }
        return s
    }

    /// `reader` checked against `check`; warnings to `warn`, or each to standard error.
    func checked(_ reader: MoleculeReader, check: MoleculeCheck, skipUnknown: Bool = false,
                 warn: ((QDFError) -> Void)? = nil) -> CheckedMoleculeReader {
        CheckedMoleculeReader(reader, check: check, allowed: allowed, unit: CoordinateUnit(name: unit) ?? .angstrom,
                              skipUnknownElements: skipUnknown, warn: warn ?? { log("warning: \($0.description)") })
    }
}
