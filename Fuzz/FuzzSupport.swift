// Shared by every fuzz target (compiled into each one by scripts/fuzz).
import Foundation

/// Writes the fuzzer's input to a per-process temporary file with the given extension
/// (for readers that take a path) and removes it afterwards.
func withFuzzFile(_ data: UnsafePointer<UInt8>, _ size: Int, extension ext: String,
                  _ body: (String) throws -> Void) {
    let path = NSTemporaryDirectory() + "qdf-fuzz-\(getpid())." + ext
    let d = Data(bytes: data, count: size)
    guard FileManager.default.createFile(atPath: path, contents: d) else { fatalError("cannot write \(path)") }
    defer { unlink(path) }
    do { try body(path) } catch is QDFError {
        // A clear error is the expected outcome for most inputs.
    } catch {
        fatalError("non-QDFError thrown: \(error)")
    }
}

/// Runs a parser over bytes in memory; only QDFError is an acceptable failure.
func fuzzBytes(_ body: () throws -> Void) {
    do { try body() } catch is QDFError {} catch { fatalError("non-QDFError thrown: \(error)") }
}
