import QuantumDeepField

// A reader that runs `MoleculeCheck` on every molecule of another reader before handing
// it on: an issue is an error naming the file, the line (the atom's own line when the
// issue concerns one atom) and the molecule, unless the user allowed that kind of issue,
// in which case it is a warning. Coordinates given in bohr are converted to Å first.

/// The length unit of input coordinates.
public enum CoordinateUnit: String, Sendable, CaseIterable {
    /// Ångström (every format's convention).
    case angstrom
    /// Bohr (atomic units), converted to Å when read.
    case bohr

    /// The unit a `--unit` value names (`angstrom`, `A`, `Å`, `bohr`, `au`), or nil.
    public init?(name: String) {
        switch name.lowercased() {
        case "angstrom", "a", "å", "ang": self = .angstrom
        case "bohr", "au", "a.u.", "a0": self = .bohr
        default: return nil
        }
    }
}

/// Wraps a reader: converts units, checks each molecule, and throws, warns or skips.
public final class CheckedMoleculeReader: MoleculeReader {
    private let inner: MoleculeReader
    private let check: MoleculeCheck
    private let allowed: Set<MoleculeIssue.Kind>
    private let unit: CoordinateUnit
    private let skipUnknownElements: Bool
    private let warn: (QDFError) -> Void
    /// Molecules skipped for elements outside the model (with `skipUnknownElements`), with the reason.
    public private(set) var skipped: [(id: String, reason: String)] = []
    /// What to tell the user for each kind of issue (the `qdf` options by default).
    public var hints: [MoleculeIssue.Kind: String] = [
        .unknownElement: "--skip-unknown skips such molecules",
        .charged: "--allow-charged predicts anyway",
        .openShell: "--allow-open-shell predicts anyway",
        .atomsTooClose: "--allow-geometry predicts anyway",
        .bohrUnits: "give --unit bohr if the coordinates are in bohr, or --allow-geometry",
        .isolatedAtom: "--allow-geometry predicts anyway",
    ]

    /// - Parameters:
    ///   - allowed: kinds of issues that only warn.
    ///   - skipUnknownElements: skip (and list in `skipped`) molecules with elements outside the check's known elements.
    ///   - warn: receives a located warning for each allowed issue.
    public init(_ inner: MoleculeReader, check: MoleculeCheck, allowed: Set<MoleculeIssue.Kind> = [],
                unit: CoordinateUnit = .angstrom, skipUnknownElements: Bool = false,
                warn: @escaping (QDFError) -> Void = { _ in }) {
        self.inner = inner
        self.check = check
        self.allowed = allowed
        self.unit = unit
        self.skipUnknownElements = skipUnknownElements
        self.warn = warn
    }

    public var path: String { inner.path }
    public var moleculeLine: Int { inner.moleculeLine }
    public var atomLines: [Int] { inner.atomLines }

    /// The next molecule that passes (or is allowed through); throws `QDFError` at the
    /// line of the first issue not allowed.
    public func next() throws -> Molecule? {
        while var m = try inner.next() {
            if unit == .bohr { m.positions = m.positions.map { $0 * angstromPerBohr } }
            let issues = check.issues(m)
            if skipUnknownElements, let e = issues.first(where: { $0.kind == .unknownElement }) {
                skipped.append((m.id, e.message))
                continue
            }
            let refused = issues.filter { !allowed.contains($0.kind) }
            if let first = refused.first {
                var text = "molecule '\(excerpt(m.id))': \(first.message)"
                if refused.count > 1 { text += " (and \(refused.count - 1) more issue\(refused.count > 2 ? "s" : ""): \(refused.dropFirst().map(\.kind.rawValue).joined(separator: ", ")))" }
                if let h = hints[first.kind] { text += "; \(h)" }
                throw QDFError(text, file: path, line: inner.line(ofAtom: first.atom))
            }
            for i in issues {
                warn(QDFError("molecule '\(excerpt(m.id))': \(i.message) (allowed)", file: path, line: inner.line(ofAtom: i.atom)))
            }
            return m
        }
        return nil
    }
}
