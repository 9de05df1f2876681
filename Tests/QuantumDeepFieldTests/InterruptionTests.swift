import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Training runs are never lost: the `qdf` executable is killed (SIGKILL) or interrupted
/// (SIGINT) mid-run and resumed; the result equals an uninterrupted run bit for bit.
@Suite("Interrupted training", .serialized)
struct InterruptionTests {
    /// The `qdf` executable built beside the test bundle.
    static var qdf: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("qdf").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return bundleDir.appendingPathComponent("qdf").path
    }
    static var available: Bool { FileManager.default.isExecutableFile(atPath: qdf) }

    static let trainArgs = ["--epochs", "5", "--dim", "24", "--hidden-hk", "16", "--layer-functional", "2",
                            "--layer-hk", "2", "--lr", "1e-3", "--batch-size", "2",
                            // The toy data set's random molecules are not chemistry (qdf train checks it).
                            "--allow-open-shell", "--allow-geometry"]

    static func start(_ args: [String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: qdf)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return (p, err)
    }

    static func run(_ args: [String]) throws -> (status: Int32, stderr: String) {
        let (p, err) = try start(args)
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func learningCurveRows(_ run: String) -> Int {
        guard let t = try? String(contentsOfFile: run + "/learning_curve.tsv", encoding: .utf8) else { return 0 }
        return t.split(separator: "\n").count - 1
    }

    static func dataset(_ dir: TemporaryDirectory) throws -> String {
        try TrainingTests.writeDataset(dir, name: "toy_energy_eV")
    }

    @Test("SIGKILL mid-run leaves the last epoch intact; --resume reaches the uninterrupted parameters",
          .enabled(if: available, "the qdf executable was not built beside the tests"))
    func sigkill() throws {
        let dir = try TemporaryDirectory()
        let data = try Self.dataset(dir)
        let full = try Self.run(["train", data, "-o", dir.file("full")] + Self.trainArgs)
        #expect(full.status == 0, "\(full.stderr)")

        let (p, _) = try Self.start(["train", data, "-o", dir.file("killed")] + Self.trainArgs)
        // Wait for the first epoch's model, then kill 15 ms later, wherever it is.
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: dir.file("killed/model.safetensors")) && Date() < deadline && p.isRunning {
            usleep(2000)
        }
        usleep(15_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal || p.terminationStatus == 0)
        // Whatever is on disk is a complete model.
        _ = try QDFModel.load(path: dir.file("killed/model.safetensors"))
        let resumed = try Self.run(["train", "--resume", dir.file("killed")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try QDFModel.load(path: dir.file("full/model.safetensors"))
        let b = try QDFModel.load(path: dir.file("killed/model.safetensors"))
        #expect(a.parameters == b.parameters)
        #expect(Self.learningCurveRows(dir.file("killed")) == 5)
        // No temporary files are left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("killed")).filter { $0.contains(".tmp.") }
        #expect(left.isEmpty || p.terminationReason == .uncaughtSignal, "\(left)")
    }

    @Test("SIGINT finishes the batch, writes a checkpoint, prints the resume command; resuming matches",
          .enabled(if: available, "the qdf executable was not built beside the tests"))
    func sigint() throws {
        let dir = try TemporaryDirectory()
        let data = try Self.dataset(dir)
        let full = try Self.run(["train", data, "-o", dir.file("full")] + Self.trainArgs)
        #expect(full.status == 0)
        let (p, err) = try Self.start(["train", data, "-o", dir.file("int")] + Self.trainArgs)
        let deadline = Date().addingTimeInterval(120)
        while Self.learningCurveRows(dir.file("int")) < 1 && Date() < deadline && p.isRunning { usleep(2000) }
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus == 130 {
            #expect(text.contains("qdf train --resume"), "\(text)")
            let resumed = try Self.run(["train", "--resume", dir.file("int")])
            #expect(resumed.status == 0, "\(resumed.stderr)")
        } else {
            // The run had already finished when the signal arrived.
            #expect(p.terminationStatus == 0, "\(text)")
        }
        let a = try QDFModel.load(path: dir.file("full/model.safetensors"))
        let b = try QDFModel.load(path: dir.file("int/model.safetensors"))
        #expect(a.parameters == b.parameters)
    }

    @Test("SIGKILL before the first epoch ends: --resume starts from the initial checkpoint",
          .enabled(if: available, "the qdf executable was not built beside the tests"))
    func sigkillEarly() throws {
        let dir = try TemporaryDirectory()
        let data = try Self.dataset(dir)
        let full = try Self.run(["train", data, "-o", dir.file("full")] + Self.trainArgs)
        #expect(full.status == 0)
        let (p, _) = try Self.start(["train", data, "-o", dir.file("early")] + Self.trainArgs)
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: dir.file("early/state.safetensors")) && Date() < deadline && p.isRunning {
            usleep(1000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let resumed = try Self.run(["train", "--resume", dir.file("early")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try QDFModel.load(path: dir.file("full/model.safetensors"))
        let b = try QDFModel.load(path: dir.file("early/model.safetensors"))
        #expect(a.parameters == b.parameters)
    }

    @Test("A run folder that cannot be created gives a clear error naming it",
          .enabled(if: available, "the qdf executable was not built beside the tests"))
    func uncreatable() throws {
        let dir = try TemporaryDirectory()
        let data = try Self.dataset(dir)
        try dir.write("afile", "not a folder")
        let r = try Self.run(["train", data, "-o", dir.file("afile/run")] + Self.trainArgs)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("afile/run") && r.stderr.contains("cannot create the run folder"), "\(r.stderr)")
    }

    @Test("An unwritable run folder gives a clear error",
          .enabled(if: available && getuid() != 0, "runs as root (permissions are not enforced)"))
    func unwritable() throws {
        let dir = try TemporaryDirectory()
        let data = try Self.dataset(dir)
        try FileManager.default.createDirectory(atPath: dir.file("ro"), withIntermediateDirectories: true)
        chmod(dir.file("ro"), 0o555)
        let r = try Self.run(["train", data, "-o", dir.file("ro/run")] + Self.trainArgs)
        #expect(r.status == 1 && r.stderr.contains("ro/run"))
    }
}
