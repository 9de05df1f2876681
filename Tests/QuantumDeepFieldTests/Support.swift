import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Locates `../shared` (reference data beside the project's root). Tests that need it
/// use `.enabled(if: Shared.available, Shared.skipMessage)` so a clone without it
/// shows them as skipped, with the reason.
enum Shared {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)  // .../Tests/QuantumDeepFieldTests/Support.swift
        let project = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        if let env = ProcessInfo.processInfo.environment["QDF_SHARED"] { return env }
        return project.deletingLastPathComponent().appendingPathComponent("shared").path
    }()
    static var available: Bool { FileManager.default.fileExists(atPath: root + "/reference/qdf_QM9under14atoms_pretrained.safetensors") }
    static let skipMessage: Comment = "../shared (reference data) is absent: skipped"
    static func path(_ rel: String) -> String { root + "/" + rel }
    static var referenceModel: String { path("reference/qdf_QM9under14atoms_pretrained.safetensors") }
    static func dataset(_ name: String) -> String { path("data/\(name)") }
}

/// A temporary folder removed at the end of the test.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "qdf-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

/// Reads a TSV file into a header and rows.
func readTSV(_ path: String) throws -> (header: [String], rows: [[String]]) {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    let header = lines.removeFirst()
    return (header, lines)
}

/// Runs `executable` to its end with `input` on its standard input (empty when nil) and both
/// output streams captured through files (neither can fill a pipe and block the child).
func runProcess(_ executable: String, _ args: [String], input: Data? = nil, cwd: String? = nil,
                environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let c = cwd { p.currentDirectoryURL = URL(fileURLWithPath: c) }
    if let e = environment { p.environment = ProcessInfo.processInfo.environment.merging(e) { $1 } }
    let tmp = NSTemporaryDirectory() + "qdf-run-" + UUID().uuidString
    for s in ["out", "err", "in"] { _ = FileManager.default.createFile(atPath: tmp + s, contents: s == "in" ? (input ?? Data()) : nil) }
    defer { for s in ["out", "err", "in"] { try? FileManager.default.removeItem(atPath: tmp + s) } }
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp + "out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp + "err"))
    p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: tmp + "in"))
    try p.run()
    p.waitUntilExit()
    let out = FileManager.default.contents(atPath: tmp + "out") ?? Data()
    let err = FileManager.default.contents(atPath: tmp + "err") ?? Data()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}
