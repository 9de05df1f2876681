import Foundation
import QuantumDeepField

// Lists of molecule ids (`qdf dataset qm9 --val-ids/--test-ids/--exclude`).

/// Reads a list of molecule ids: one per line (the first field; QM9 indices such as "21725"
/// or ids such as "dsgdb9nsd_021725"), with "#" comments; lines whose first field is neither
/// (headers of QM9's uncharacterized.txt) are skipped and counted. A molecule file (QDF
/// text, XYZ or SDF) is read for its ids instead.
public func readIDList(_ path: String) throws -> (ids: [String], skippedLines: Int) {
    // A QDF text file: its second non-blank line is an atom line.
    let probe = try openLines(path)
    var firstLines = [String]()
    while firstLines.count < 2, let l = try probe.nextLine() {
        if !l.trimmingCharacters(in: .whitespaces).isEmpty { firstLines.append(l) }
    }
    let isMoleculeFile: Bool = {
        if moleculeFormat(path) != .qdf { return true }
        guard firstLines.count == 2 else { return false }
        let t = tokens(firstLines[1])
        return t.count == 4 && Element.atomicNumber(t[0]) != nil && t[1...].allSatisfy { parseNumber($0) != nil }
    }()
    if isMoleculeFile {
        return (try readMolecules(path).map(\.id), 0)
    }
    let lines = try openLines(path)
    var ids = [String](), skipped = 0
    var seen = [String: Int]()
    while let l = try lines.nextLine() {
        let t = tokens(l)
        guard let first = t.first, !first.hasPrefix("#") else { continue }
        let id: String
        if let idx = qm9Index(first) { id = qm9ID(idx) }
        else if first.contains("_") && first.last?.isNumber == true { id = String(first) }
        else { skipped += 1; continue }
        if let prev = seen[id] { throw lines.error("id \(id) repeats (first at line \(prev))") }
        seen[id] = lines.lineNumber
        ids.append(id)
    }
    return (ids, skipped)
}
