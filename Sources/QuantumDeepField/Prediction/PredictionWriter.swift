import Foundation

// Prediction tables in four formats:
//
//   tsv    ID, Correct, Predict, Error (the published columns; Correct and Error only when
//          the input has values; suffixed _0, _1, ... for several outputs), then Spread
//          with --rotations. Unchanged for its existing readers.
//   csv    one row per molecule and output: id, source, line, atoms, property, unit,
//          predicted, correct, error (empty when unknown), spread (with --rotations).
//   jsonl  one object per molecule: {"id", "source", "line", "atoms", "property", "unit",
//          "predicted", "correct", "error", "spread"}; the last five are numbers for a
//          one-output model and arrays otherwise; absent when unknown.
//   json   {"model", "property": [...], "unit": [...], "predictions": [the jsonl objects]}.
//
// `qdf predict` writes every format; a training run's predictions_test.tsv is the tsv.
//
// Values are Float32 (the model's precision) printed with the fewest digits that read
// back to the same Float32 (at most 9 significant digits, usually 7-8); values read from
// the input print as they were read (shortest Float64). IDs are sanitised: tabs, line
// breaks and other control characters become spaces (TSV), or are quoted/escaped (CSV, JSON).

/// The output formats of `qdf predict`.
public enum PredictionFormat: String, Sendable, CaseIterable {
    case tsv, csv, json, jsonl

    /// The format an output path's extension implies (`.csv`, `.json`, `.jsonl`/`.ndjson`,
    /// `.tsv`/`.txt`), or nil for another extension.
    public init?(path: String) {
        let l = path.lowercased()
        if l.hasSuffix(".csv") { self = .csv }
        else if l.hasSuffix(".jsonl") || l.hasSuffix(".ndjson") { self = .jsonl }
        else if l.hasSuffix(".json") { self = .json }
        else if l.hasSuffix(".tsv") || l.hasSuffix(".txt") || l.hasSuffix(".tab") { self = .tsv }
        else { return nil }
    }
}

/// Lines to a file, written atomically when `finish()` is called (through a temporary
/// file, so memory stays constant), or to standard output (nil or "-"), flushed line by
/// line so that a reading process sees each one at once.
public final class LineSink {
    private let writer: AtomicTextWriter?

    /// A sink for `path`; throws `QDFError` if its folder does not exist.
    public init(path: String?) throws {
        if let p = path, p != "-" {
            let dir = (p as NSString).deletingLastPathComponent
            var isDir: ObjCBool = false
            if !dir.isEmpty && !(FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue) {
                throw QDFError("the output folder does not exist", file: p)
            }
            writer = try AtomicTextWriter(path: p)
        } else {
            writer = nil
        }
    }

    /// Writes one line (a newline is added).
    public func write(_ line: String) throws {
        if let w = writer { try w.write(line) }
        else {
            // Unbuffered: a process reading the pipe sees each line at once.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// Renames the temporary file into place (nothing for standard output).
    public func finish() throws { try writer?.commit() }
}

/// Writes prediction records in one of the formats above.
public final class PredictionWriter {
    private let format: PredictionFormat
    private let labels: OutputLabels
    private let sink: LineSink
    private let withSpread: Bool
    private let model: String
    private var tsvWithCorrect: Bool?
    private var rows = 0

    /// - Parameters:
    ///   - labels: the outputs' names and units (`columnNames`, `columnUnits`: one per output).
    ///   - withSpread: add the spread over orientations (`--rotations`).
    ///   - model: the model's name or path, for the JSON document.
    ///   - withCorrect: TSV only: whether the Correct and Error columns are written; nil
    ///     decides from the first record (whether it has the input's values).
    public init(format: PredictionFormat, labels: OutputLabels, sink: LineSink, withSpread: Bool = false, model: String = "",
                withCorrect: Bool? = nil) {
        self.format = format
        self.labels = labels
        self.sink = sink
        self.withSpread = withSpread
        self.model = model
        tsvWithCorrect = withCorrect
    }

    private var outputs: Int { labels.columnNames.count }

    /// Writes one record (the TSV header, or the JSON document's opening, before the first).
    public func write(_ r: Prediction) throws {
        let known = r.correct.count == outputs
        switch format {
        case .tsv:
            if rows == 0 {
                if tsvWithCorrect == nil { tsvWithCorrect = known }
                try sink.write(tsvHeader(withCorrect: tsvWithCorrect!))
            }
            var f = [tsvField(r.id)]
            if tsvWithCorrect! { f += r.correct.map { "\($0)" } + (known ? [] : Array(repeating: "", count: outputs)) }
            f += r.predicted.map(number)
            if tsvWithCorrect! { f += known ? r.errors.map(number) : Array(repeating: "", count: outputs) }
            if withSpread { f += r.spread.map(number) }
            try sink.write(f.joined(separator: "\t"))
        case .csv:
            if rows == 0 {
                try sink.write((["id", "source", "line", "atoms", "property", "unit", "predicted", "correct", "error"] + (withSpread ? ["spread"] : [])).joined(separator: ","))
            }
            let e = known ? r.errors : []
            for q in 0..<outputs {
                var f = [csvField(r.id), csvField(r.source), "\(r.line)", "\(r.atomCount)", csvField(labels.columnNames[q]), csvField(labels.columnUnits[q]),
                         number(r.predicted[q]), known ? "\(r.correct[q])" : "", known ? number(e[q]) : ""]
                if withSpread { f.append(q < r.spread.count ? number(r.spread[q]) : "") }
                try sink.write(f.joined(separator: ","))
            }
        case .jsonl:
            try sink.write(jsonObject(r))
        case .json:
            if rows == 0 { try sink.write(jsonOpening() + "\n" + jsonObject(r)) }
            else { try sink.write("," + jsonObject(r)) }
        }
        rows += 1
    }

    /// Ends the output (a header alone when there were no rows; the JSON document's
    /// closing) and commits the file.
    public func finish() throws {
        switch format {
        case .tsv: if rows == 0 { try sink.write(tsvHeader(withCorrect: tsvWithCorrect ?? false)) }
        case .csv: if rows == 0 { try sink.write((["id", "source", "line", "atoms", "property", "unit", "predicted", "correct", "error"] + (withSpread ? ["spread"] : [])).joined(separator: ",")) }
        case .json: try sink.write(rows == 0 ? jsonOpening() + "\n]}" : "]}")
        case .jsonl: break
        }
        try sink.finish()
    }

    private func tsvHeader(withCorrect: Bool) -> String {
        var h = predictionColumns(outputs: outputs, withCorrect: withCorrect)
        if withSpread { h += outputs == 1 ? ["Spread"] : (0..<outputs).map { "Spread_\($0)" } }
        return h.joined(separator: "\t")
    }

    private func jsonOpening() -> String {
        "{\"model\": \(jsonString(model)), \"property\": [\(labels.columnNames.map(jsonString).joined(separator: ", "))], \"unit\": [\(labels.columnUnits.map(jsonString).joined(separator: ", "))], \"predictions\": ["
    }

    private func jsonObject(_ r: Prediction) -> String {
        func value<T>(_ xs: [T], _ f: (T) -> String) -> String {
            outputs == 1 ? f(xs[0]) : "[" + xs.map(f).joined(separator: ", ") + "]"
        }
        var parts = ["\"id\": \(jsonString(r.id))", "\"source\": \(jsonString(r.source))", "\"line\": \(r.line)", "\"atoms\": \(r.atomCount)",
                     "\"property\": \(value(labels.columnNames, jsonString))", "\"unit\": \(value(labels.columnUnits, jsonString))",
                     "\"predicted\": \(value(r.predicted, jsonNumber))"]
        if r.correct.count == outputs {
            parts.append("\"correct\": \(value(r.correct, { $0.isFinite ? "\($0)" : "null" }))")
            parts.append("\"error\": \(value(r.errors, jsonNumber))")
        }
        if withSpread && r.spread.count == outputs { parts.append("\"spread\": \(value(r.spread, jsonNumber))") }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}

/// Column names of a predictions TSV: ID, then Correct…, Predict…, Error… (the
/// reference's order); suffixed with the property index when there are several.
private func predictionColumns(outputs: Int, withCorrect: Bool) -> [String] {
    func names(_ base: String) -> [String] { outputs == 1 ? [base] : (0..<outputs).map { "\(base)_\($0)" } }
    return ["ID"] + (withCorrect ? names("Correct") : []) + names("Predict") + (withCorrect ? names("Error") : [])
}

/// A Float32 with the fewest digits that read back to the same Float32.
private func number(_ x: Float) -> String { x.isFinite ? "\(x)" : (x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf")) }

private func jsonNumber(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }

/// An id fit for a TSV field: tabs, line breaks and other control characters become spaces.
package func tsvField(_ s: String) -> String {
    String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
}

/// A CSV field (RFC 4180): control characters become spaces; quoted when it holds a comma,
/// a quote or leading/trailing spaces.
package func csvField(_ s: String) -> String {
    let t = tsvField(s)
    if t.contains(",") || t.contains("\"") || t.hasPrefix(" ") || t.hasSuffix(" ") {
        return "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return t
}
