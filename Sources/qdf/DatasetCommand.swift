import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct DatasetCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Build QDF datasets from original sources.",
        subcommands: [QM9.self, Fetch.self])

    struct QM9: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "qm9",
            abstract: "Build QM9 train/val/test files (QDF text format) from QM9 as distributed.",
            discussion: """
            --source takes the original dsgdb9nsd.xyz.tar.bz2 (or .tar, or a folder of its \
            .xyz files), the qm9pack wheel (qm9pack-*.whl), a folder holding its CSV files, \
            or the CSV files themselves (repeat --source for several). Writes train.txt, \
            val.txt and test.txt (all.txt with --no-split) into --output, each sorted by QM9 \
            index, and dataset.json (each property's name, unit and kind, from which \
            `qdf train` chooses its readout). --list-properties prints the properties. \
            Reproduce the published QM9under14atoms split with
              qdf dataset qm9 --source qm9pack-1.0.3-py3-none-any.whl --output DIR \\
                --max-atoms 14 --val-ids val.txt --test-ids test.txt --coordinates published
            """)

        @Option(name: .long, help: "QM9 source: .tar.bz2/.tar archive, folder, qm9pack .whl, or .csv (repeatable).")
        var source: [String] = []

        @Option(name: .shortAndLong, help: "The folder to write train.txt, val.txt, test.txt and dataset.json into (created if needed); end its name with the unit, e.g. QM9_mu_D.")
        var output: String?

        @Flag(help: "Print the properties (name, meaning, unit, extensive or intensive) and exit.")
        var listProperties = false

        @Option(help: "Keep molecules with at most this many atoms.")
        var maxAtoms: Int?

        @Option(help: "Keep molecules with at least this many atoms.")
        var minAtoms: Int?

        @Option(help: "The properties, comma-separated: mu alpha homo lumo gap r2 zpve U0 U H G Cv A B C U0_atom U_atom H_atom G_atom (atomization = U0_atom, homolumo = homo,lumo); all extensive or all intensive. See --list-properties.")
        var property: String = "atomization"

        @Option(help: "Keep only these molecules: ids one per line, or a molecule file (its ids), as --val-ids.")
        var only: String?

        @Option(name: .customLong("val-ids"), help: "Validation ids: one per line (QM9 index or dsgdb9nsd_NNNNNN), or a QDF/XYZ/SDF file.")
        var valIDs: String?

        @Option(name: .customLong("test-ids"), help: "Test ids, as --val-ids.")
        var testIDs: String?

        @Option(help: "Seed of the random 8:1:1 split (when no --val-ids/--test-ids).")
        var seed: UInt64 = 1234

        @Flag(help: "Write every molecule to all.txt instead of splitting.")
        var noSplit = false

        @Option(help: "Ids to drop, e.g. QM9's uncharacterized.txt (one per line; header lines are skipped).")
        var exclude: String?

        @Option(help: "Coordinate text: source (as in the source), shortest (round-trip digits), or published (shortest in train, source in val/test, as the published QDF files).")
        var coordinates: String = "source"

        func validate() throws {
            if listProperties { return }
            guard !source.isEmpty else { throw ValidationError("give --source (the qm9pack wheel, QM9's archive, a folder or CSV files)") }
            guard output != nil else { throw ValidationError("give --output DIR") }
            do {
                let ps = try QM9Property.parseList(property)
                _ = try PropertyKind.readout(for: ps.map(\.info))
            } catch let e as QDFError {
                throw ValidationError("--property: " + e.message)
            }
            guard CoordinateStyle(rawValue: coordinates) != nil else {
                throw ValidationError("--coordinates must be one of: \(CoordinateStyle.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if (valIDs == nil) != (testIDs == nil) { throw ValidationError("give both --val-ids and --test-ids, or neither") }
            if noSplit && valIDs != nil { throw ValidationError("--no-split cannot be combined with --val-ids/--test-ids") }
            if let a = maxAtoms, a < 1 { throw ValidationError("--max-atoms must be at least 1") }
            if let a = minAtoms, let b = maxAtoms, a > b { throw ValidationError("--min-atoms is larger than --max-atoms: nothing would be kept") }
        }

        func run() throws {
            if listProperties {
                print(QM9Property.table, terminator: "")
                return
            }
            try reportingErrors {
                let start = Date()
                let output = self.output!
                var o = QM9BuildOptions()
                o.maxAtoms = maxAtoms
                o.minAtoms = minAtoms
                o.properties = try QM9Property.parseList(property)
                let units = Set(o.properties.map(\.folderUnit))
                let lastWord = (output as NSString).standardizingPath.split(separator: "_").last.map(String.init) ?? ""
                if units.count == 1, lastWord != units.first! {
                    log("note: the folder's name does not end in _\(units.first!) (the unit); dataset.json records it anyway")
                }
                if let f = only {
                    let ids = try readIDList(f).ids
                    o.only = Set(ids)
                    log("only: \(ids.count) ids from \(f)")
                }
                o.coordinates = CoordinateStyle(rawValue: coordinates)!
                if let e = exclude {
                    let (ids, skipped) = try readIDList(e)
                    o.exclude = Set(ids)
                    log("exclude: \(ids.count) ids from \(e)" + (skipped > 0 ? " (\(skipped) text lines skipped)" : ""))
                }
                if let v = valIDs, let t = testIDs {
                    let val = try readIDList(v).ids, test = try readIDList(t).ids
                    log("split: \(val.count) val ids from \(v), \(test.count) test ids from \(t)")
                    o.split = .ids(val: val, test: test)
                } else {
                    o.split = noSplit ? .none : .seeded(seed)
                }
                let records = try QM9Source.read(source, progress: { log($0) })
                let splits = try QM9Dataset.split(records, options: o)
                let names = source.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                let files = try QM9Dataset.write(splits, to: output, options: o,
                                                 source: "QM9 (Ramakrishnan et al., Sci. Data 1, 140022 (2014)) from \(names)")
                var summary = "\(records.count) molecules read"
                if splits.excluded > 0 { summary += ", \(splits.excluded) excluded" }
                if splits.filtered > 0 { summary += ", \(splits.filtered) left out by the size filter" + (only != nil ? " or --only" : "") }
                log(summary)
                for (k, p) in splits.parts.enumerated() { log("\(files[k]): \(p.records.count) molecules") }
                log("\(output)/\(DatasetMetadata.fileName): " + o.properties.map { "\($0.rawValue) (\($0.unit), \($0.kind.rawValue))" }.joined(separator: ", "))
                log(String(format: "%.1f s", Date().timeIntervalSince(start)))
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download the qm9pack wheel (all of QM9 as CSV) with pip.",
            discussion: "Runs: python3 -m pip download --no-deps --dest DIR qm9pack (needs pip and access to the package index).")

        @Option(name: .shortAndLong, help: "The folder to download into.")
        var output: String = "data/qm9pack"

        func run() throws {
            try reportingErrors {
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["python3", "-m", "pip", "download", "--no-deps", "--dest", output, "qm9pack"]
                p.standardOutput = FileHandle.standardError  // stdout carries only the wheel's path
                try p.run()
                p.waitUntilExit()
                guard p.terminationStatus == 0 else {
                    throw QDFError("pip download failed (exit status \(p.terminationStatus))", file: output)
                }
                let wheels = (try? FileManager.default.contentsOfDirectory(atPath: output))?
                    .filter { $0.hasPrefix("qm9pack") && $0.hasSuffix(".whl") }.sorted() ?? []
                guard let w = wheels.last else { throw QDFError("pip finished but no qm9pack wheel is here", file: output) }
                print(output + "/" + w)
            }
        }
    }
}
