import Foundation
import QuantumDeepField

// Molecule files by name: the reader is chosen by the extension after an optional
// compression suffix, and compressed files are decompressed while they are read.

/// Opens a molecule file by its extension, after an optional `.gz` or `.bz2`:
/// `.xyz`/`.extxyz` (XYZ, multi-frame, extended XYZ, QM9's original files),
/// `.sdf`/`.sd`/`.mol` (MDL V2000), anything else the QDF text format.
/// - Parameter properties: names of the property values to read (extended XYZ `key=value`
///   comment fields, SDF data items, QM9 `gdb` line names such as `U0` or `homo`).
public func openMoleculeFile(_ path: String, properties: [String] = []) throws -> MoleculeReader {
    switch moleculeFormat(path) {
    case .xyz: return try XYZReader(path: path, properties: properties)
    case .sdf: return try SDFReader(path: path, properties: properties)
    case .qdf:
        if !properties.isEmpty {
            throw QDFError("property names (\(properties.joined(separator: ", "))) apply to XYZ and SDF files; the QDF text format has unnamed property values", file: path)
        }
        return try QDFTextReader(path: path, source: openByteSource(path))
    }
}

public enum MoleculeFileFormat: Sendable { case qdf, xyz, sdf }

/// The format `openMoleculeFile` would use for a path.
public func moleculeFormat(_ path: String) -> MoleculeFileFormat {
    var lower = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
    for c in [".gz", ".bz2"] where lower.hasSuffix(c) { lower.removeLast(c.count) }
    if lower.hasSuffix(".xyz") || lower.hasSuffix(".extxyz") { return .xyz }
    if lower.hasSuffix(".sdf") || lower.hasSuffix(".sd") || lower.hasSuffix(".mol") { return .sdf }
    return .qdf
}

/// The file name without folders and without its molecule-format and compression extensions.
func fileStem(_ path: String) -> String {
    var name = path.split(separator: "/").last.map(String.init) ?? path
    for ext in [".gz", ".bz2"] where name.lowercased().hasSuffix(ext) { name.removeLast(ext.count) }
    for ext in [".xyz", ".extxyz", ".sdf", ".sd", ".mol", ".txt"] where name.lowercased().hasSuffix(ext) {
        name.removeLast(ext.count); break
    }
    return name
}

/// Reads every molecule of a file.
public func readMolecules(_ path: String, properties: [String] = []) throws -> [Molecule] {
    try openMoleculeFile(path, properties: properties).readAll()
}
