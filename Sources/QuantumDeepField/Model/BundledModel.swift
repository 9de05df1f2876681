import Foundation

/// The model that ships with qdf-swift (a package resource) and the demo's molecules.
///
/// The model was trained by `qdf train` on QM9under14atoms (the published split); its
/// recipe, training time and errors are in `docs/model-card.md` and in the file's
/// metadata (keys `model_name`, `model_card_*`).
///
/// Resources are looked up, in order, in `$QDF_RESOURCES`, in SwiftPM's resource bundle
/// next to the running executable (`qdf-swift_QuantumDeepField.resources/Resources`,
/// copy it along with the binary when installing), and in the source tree this library
/// was built from. A missing file is a clear error, never a crash.
public enum BundledResources {
    /// File name of the bundled model (predicts the atomization energy in eV).
    public static let modelFile = "qdf-qm9under14atoms.safetensors"
    /// File name of the demo molecules (QDF text format, positions in Å).
    public static let demoMoleculesFile = "demo-molecules.txt"
    /// The SwiftPM resource bundle's folder name, looked for next to the executable.
    public static let bundleName = "qdf-swift_QuantumDeepField.resources"

    /// The folders searched, in order (existing or not).
    public static func searchPath() -> [String] {
        var dirs = [String]()
        if let env = ProcessInfo.processInfo.environment["QDF_RESOURCES"], !env.isEmpty { dirs.append(env) }
        for exe in executableDirectories() {
            dirs.append(exe + "/" + bundleName + "/Resources")
            dirs.append(exe + "/" + bundleName)
        }
        // The source tree (a clone built in place): Sources/QuantumDeepField/Resources.
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        dirs.append(here.appendingPathComponent("Resources").path)
        return dirs
    }

    /// The path of a bundled resource file: the first readable `name` along `searchPath()`.
    /// Throws `QDFError` (no file/line) listing the folders searched if none has it.
    public static func path(_ name: String) throws -> String {
        let dirs = searchPath()
        for d in dirs {
            let p = d + "/" + name
            if FileManager.default.isReadableFile(atPath: p) { return p }
        }
        throw QDFError("the bundled resource '\(name)' was not found; looked in: " + dirs.joined(separator: ", ")
                       + " (set QDF_RESOURCES to the folder holding it, or give --model)")
    }

    /// The folders of the running executable: as invoked and with symbolic links resolved.
    static func executableDirectories() -> [String] {
        var out = [String]()
        if let u = Bundle.main.executableURL {
            out.append(u.deletingLastPathComponent().path)
            out.append(u.resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        if let real = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            out.append(URL(fileURLWithPath: real).deletingLastPathComponent().path)
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }
}

/// The bundled model: where it is, the model itself and a one-line description.
public struct BundledModel {
    /// Where the model file was found.
    public let path: String
    /// The loaded model.
    public let model: QDFModel

    /// Finds and loads the bundled model. Throws `QDFError` if it is not found (see
    /// `BundledResources.path`) or the file is invalid (file: the path).
    public static func load() throws -> BundledModel {
        let p = try BundledResources.path(BundledResources.modelFile)
        return BundledModel(path: p, model: try QDFModel.load(path: p))
    }

    /// A one-line description from the metadata (`model_name`, else the file name, then the
    /// `model_card_*` facts), e.g. "qdf-qm9under14atoms v1 (trained on QM9 molecules with at
    /// most 14 atoms; test MAE 0.1826 eV; ...)".
    public var summary: String {
        let md = model.metadata
        var s = md["model_name"] ?? (path as NSString).lastPathComponent
        // The card's facts without their parenthesized details.
        func short(_ s: String) -> String { s.components(separatedBy: " (").first ?? s }
        var facts = [String]()
        if let d = md["model_card_data"] { facts.append("trained on \(short(d))") }
        if let t = md["model_card_test_mae"] { facts.append("test MAE \(short(t))") }
        if let o = md["model_card_over15_mae"] { facts.append("MAE \(short(o)) on larger molecules (15–27 atoms)") }
        if !facts.isEmpty { s += " (" + facts.joined(separator: "; ") + ")" }
        return s
    }
}
