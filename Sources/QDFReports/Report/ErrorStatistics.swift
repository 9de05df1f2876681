import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// Error statistics behind the report's tables and figures: overall MAE and RMSE per
// output, and the MAE by number of atoms (the extrapolation curve), summed by the core's
// `ErrorSums`. The same accumulator serves `qdf predict --by-atoms` and `qdf report`.

/// Error sums overall and per number of atoms.
public struct ErrorBySize: Sendable, Equatable {
    public var overall: ErrorSums
    /// Error sums keyed by the molecule's number of atoms.
    public var bySize: [Int: ErrorSums] = [:]

    public init(outputs: Int) { overall = ErrorSums(outputs: outputs) }

    public var outputs: Int { overall.outputs }

    public mutating func add(atoms: Int, errors: [Double]) {
        overall.add(errors)
        let p = outputs
        bySize[atoms, default: ErrorSums(outputs: p)].add(errors)
    }

    /// One row per atom count present, in increasing order.
    public var bins: [SizeBin] {
        bySize.keys.sorted().map { n in
            let s = bySize[n]!
            return SizeBin(atoms: n, count: s.count, mae: s.mae, rmse: s.rmse)
        }
    }

    /// A plain-text table (atoms, count, MAE and RMSE per output), with the training
    /// range marked when known: "train" inside it, "extrap" outside. With `labels`, the
    /// columns carry each output's name and unit ("MAE_homo(eV)"); otherwise `unit`.
    public func table(unit: String?, trainRange: ClosedRange<Int>? = nil, labels: OutputLabels? = nil) -> String {
        let P = outputs
        var head = ["atoms", "count"]
        for q in 0..<P {
            let sfx = labels?.name(q).map { "_\($0)" } ?? (P == 1 ? "" : "_\(q)")
            let u = (labels?.unit(q) ?? unit).map { "(\($0))" } ?? ""
            head += ["MAE\(sfx)\(u)", "RMSE\(sfx)\(u)"]
        }
        if trainRange != nil { head.append("region") }
        var rows = [head]
        for b in bins {
            var r = ["\(b.atoms)", "\(b.count)"]
            for q in 0..<P { r += [String(format: "%.5f", b.mae[q]), String(format: "%.5f", b.rmse[q])] }
            if let t = trainRange { r.append(t.contains(b.atoms) ? "train" : "extrap") }
            rows.append(r)
        }
        var all = ["all", "\(overall.count)"]
        for q in 0..<P { all += [String(format: "%.5f", overall.mae[q]), String(format: "%.5f", overall.rmse[q])] }
        if trainRange != nil { all.append("") }
        rows.append(all)
        var widths = [Int](repeating: 0, count: head.count)
        for r in rows { for (i, f) in r.enumerated() { widths[i] = max(widths[i], f.count) } }
        return rows.map { r in
            r.enumerated().map { i, f in String(repeating: " ", count: widths[i] - f.count) + f }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// The errors of the molecules with one number of atoms.
public struct SizeBin: Sendable, Equatable {
    public var atoms: Int
    public var count: Int
    public var mae: [Double]
    public var rmse: [Double]
}

/// Parses a range of atom counts: "3-14", "3–14" or "14" (one size).
public func parseAtomRange(_ s: String) -> ClosedRange<Int>? {
    let t = s.trimmingCharacters(in: .whitespaces)
    let parts = t.split(whereSeparator: { $0 == "-" || $0 == "–" || $0 == ":" }).map { $0.trimmingCharacters(in: .whitespaces) }
    if parts.count == 1, let a = Int(parts[0]), a > 0 { return a...a }
    if parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a > 0, a <= b { return a...b }
    return nil
}
