// The GEMM library chosen by measurement: `qdf bench --compare-blas` measures every GEMM
// library that loads at the model's shapes and records the fastest for this CPU model in
// a small JSON file; later processes on a CPU of the same model load that library first
// (QDF_BLAS still overrides). The file holds one record per CPU model, so the nodes of a
// cluster that share a home directory but differ in CPU each keep their own choice.
//
// The file: $QDF_CACHE_DIR/gemm-choice.json, else $XDG_CACHE_HOME/qdf/gemm-choice.json,
// else ~/.cache/qdf/gemm-choice.json. A file that cannot be read or parsed is ignored (and
// said so in `qdf info`); it is never needed for correctness, only for speed.

import Foundation

/// One CPU model's measured GEMM libraries and the fastest of them.
package struct GEMMChoice: Codable, Sendable, Equatable {
    /// The CPU model it was measured on (`GEMMChoice.cpuKey()`).
    package var cpu: String
    /// When (ISO 8601, UTC).
    package var measured: String
    /// Each library's rate at the model's shapes (GFLOP/s, all cores; the harmonic mean over
    /// the shapes, i.e. the rate of running each shape once: a library fast at the layers but
    /// slow at the weight gradients does not win on its best shape alone), by `GEMMLibrary.name`.
    package var gflops: [String: Double]
    /// The fastest library's name.
    package var chosen: String

    package init(cpu: String, measured: String, gflops: [String: Double]) {
        self.cpu = cpu
        self.measured = measured
        self.gflops = gflops
        // Ties go to the library earlier in `GEMMLibrary.known` (the default order).
        let order = GEMMLibrary.known.map(\.name)
        self.chosen = gflops.keys.sorted { a, b in
            let (ra, rb) = (gflops[a]!, gflops[b]!)
            if ra != rb { return ra > rb }
            return (order.firstIndex(of: a) ?? order.count) < (order.firstIndex(of: b) ?? order.count)
        }.first ?? ""
    }

    /// The harmonic mean of `rates` (0 if empty or any rate is not positive).
    package static func harmonicMean(_ rates: [Double]) -> Double {
        guard !rates.isEmpty, rates.allSatisfy({ $0 > 0 }) else { return 0 }
        return Double(rates.count) / rates.reduce(0) { $0 + 1 / $1 }
    }

    /// One line for `qdf info`: the choice and the figures behind it.
    package var summary: String {
        let others = gflops.sorted { $0.value > $1.value }.map { String(format: "%@ %.1f", $0.key, $0.value) }
        return "\(chosen), the fastest at the model's shapes on this CPU model (\(others.joined(separator: ", ")) GFLOP/s, harmonic mean over the shapes; `qdf bench --compare-blas`, \(measured))"
    }

    /// The CPU model this process runs on: vendor, model name, family and model number
    /// (Linux /proc/cpuinfo; elsewhere the machine architecture).
    package static func cpuKey(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String {
        guard let text = cpuinfo else { return "unknown " + machineArchitecture() }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }   // the first processor only
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let parts = [fields["vendor_id"], fields["model name"],
                     fields["cpu family"].map { "family " + $0 }, fields["model"].map { "model " + $0 }].compactMap { $0 }
        return parts.isEmpty ? "unknown " + machineArchitecture() : parts.joined(separator: ", ")
    }

    static func machineArchitecture() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Where the records are kept (see the file comment).
    package static func storePath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let d = environment["QDF_CACHE_DIR"], !d.isEmpty { return d + "/gemm-choice.json" }
        if let d = environment["XDG_CACHE_HOME"], !d.isEmpty { return d + "/qdf/gemm-choice.json" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/qdf/gemm-choice.json"
    }

    /// The records in `path`: empty if the file does not exist; an error message if it
    /// exists and cannot be read.
    package static func load(path: String) -> (records: [GEMMChoice], problem: String?) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], nil) }
        guard let data = FileManager.default.contents(atPath: path) else { return ([], "\(path): cannot be read") }
        do {
            return (try JSONDecoder().decode([GEMMChoice].self, from: data), nil)
        } catch {
            return ([], "\(path): not a list of GEMM choices (\(error)); ignored")
        }
    }

    /// The record for `cpu` in `path`, if any.
    package static func lookup(cpu: String, path: String) -> (choice: GEMMChoice?, problem: String?) {
        let (records, problem) = load(path: path)
        return (records.last { $0.cpu == cpu }, problem)
    }

    /// Adds or replaces the record for `self.cpu` in `path` (creating its directory), keeping
    /// the other CPU models' records. The file is replaced atomically.
    package func save(path: String) throws {
        var records = GEMMChoice.load(path: path).records.filter { $0.cpu != cpu }
        records.append(self)
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(records).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw QDFError("\(path): cannot record the GEMM choice: \(error.localizedDescription)")
        }
    }

    /// `known` with the library named `preferred` moved to the front (unchanged if unknown).
    package static func ordered(_ known: [GEMMLibrary], preferring preferred: String) -> [GEMMLibrary] {
        guard let lib = known.first(where: { $0.name == preferred }) else { return known }
        return [lib] + known.filter { $0.name != preferred }
    }
}
