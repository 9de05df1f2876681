import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the chemistry checks on molecule files, without predicting: a table of every molecule and its issues.",
        discussion: """
        Columns (tab-separated): location (file:line), molecule, atoms, formula, electrons \
        (Σ Z − recorded charge), issues (kind: reason; '-' when none). The checks: elements \
        the model knows, a recorded net or formal charge, an odd electron count or an \
        under-coordinated carbon (radical, missing hydrogens), atoms closer than 0.5 Å, \
        bond lengths that look like bohr, an atom with no neighbour within 3 Å. A summary \
        goes to standard error; the exit status is 1 when a molecule has an issue that the \
        --allow-* options do not allow.
        """)

    @Option(name: .long, help: "The model whose elements count as known (safetensors). Default: the bundled model.")
    var model: String?

    @Flag(help: "Accept every element (no model needed).")
    var anyElement = false

    @Argument(help: "Molecule files (any format qdf predict reads; - for standard input).")
    var inputs: [String]

    @Option(name: .long, help: "Input format for every input (xyz, sdf, pdb, mol2, qdf), whatever its name or content.")
    var inputFormat: String?

    @Flag(help: "List only the molecules with issues.")
    var issuesOnly = false

    @OptionGroup var chemistry: ChemistryOptions

    @OptionGroup var frameOptions: FrameOptions

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one molecule file") }
        if let f = inputFormat, MoleculeFileFormat(name: f) == nil { throw ValidationError("--input-format: unknown molecule format '\(f)'") }
    }

    func run() throws {
        var failed = false
        try reportingErrors {
            let loaded = anyElement && frameOptions.frame != nil ? nil : try loadModel(model)
            let check = anyElement ? MoleculeCheck() : MoleculeCheck(model: loaded!)
            // A canonical-frame model (or --frame canonical): how each molecule's frame is decided.
            let frames = (frameOptions.frame ?? loaded?.hyper.frame ?? .input) == .canonical
            let allowed = chemistry.allowed
            let unit = CoordinateUnit(name: chemistry.unit) ?? .angstrom
            print((["location", "molecule", "atoms", "formula", "electrons", "issues"] + (frames ? ["frame"] : [])).joined(separator: "\t"))
            var multiFrame = 0
            var molecules = 0, withIssues = 0
            var counts = [MoleculeIssue.Kind: Int]()
            for path in inputs {
                let reader = try openMoleculeFile(path, format: inputFormat.flatMap { MoleculeFileFormat(name: $0) })
                while var m = try reader.next() {
                    if unit == .bohr { m.positions = m.positions.map { $0 * angstromPerBohr } }
                    molecules += 1
                    let issues = check.issues(m)
                    if !issues.isEmpty { withIssues += 1 }
                    for i in issues { counts[i.kind, default: 0] += 1 }
                    if issues.contains(where: { !allowed.contains($0.kind) }) { failed = true }
                    if issuesOnly && issues.isEmpty { continue }
                    let text = issues.isEmpty ? "-" : issues.map {
                        "\($0.kind.rawValue)\(allowed.contains($0.kind) ? " (allowed)" : "") at line \(reader.line(ofAtom: $0.atom)): \($0.message)"
                    }.joined(separator: "; ")
                    var row = [tsvField(reader.path) + ":\(reader.moleculeLine)", tsvField(m.id), "\(m.atomCount)", m.formula,
                               "\(m.electronCount - (m.charge ?? 0))", tsvField(text)]
                    if frames {
                        let a = MoleculeFrame.analyze(m)
                        if a.frames.count > 1 { multiFrame += 1 }
                        row.append(a.summary)
                    }
                    print(row.joined(separator: "\t"))
                }
            }
            flushStdout()
            let kinds = MoleculeIssue.Kind.allCases.compactMap { k in counts[k].map { "\($0) \(k.rawValue)" } }
            log("\(molecules) molecules, \(withIssues) with issues" + (kinds.isEmpty ? "" : " (" + kinds.joined(separator: ", ") + ")")
                + (frames ? "; \(multiFrame) with more than one canonical frame (predictions average over them)" : ""))
        }
        if failed { throw ExitCode.failure }
    }
}
