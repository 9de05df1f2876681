import Foundation
import Testing
import QuantumDeepField

/// `qdf` under `mpirun` (Open MPI, installed by `scripts/setup --mpi`, which `.ci/run`
/// always runs): training on 2 ranks equals 1 process, sharded prediction is byte-identical,
/// runs resume across rank counts, and a dead or stopped rank ends the job cleanly.
@Suite("MPI", .serialized)
struct MPITests {
    static var mpirun: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") + ["/usr/bin"] {
            let p = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
    static var available: Bool { mpirun != nil && InterruptionTests.available && Shared.available }
    static let skip: Comment = "needs mpirun (scripts/setup --mpi), the qdf executable and ../shared"
    static let data = Shared.dataset("QM9under7atoms_atomizationenergy_eV")
    static let small = ["--dim", "32", "--hidden-hk", "32", "--layer-functional", "2", "--layer-hk", "2", "--lr", "1e-3"]

    /// `mpirun -np n qdf args` (or `qdf args` for n = 0), with `QDF_MPI_TIMEOUT` if given.
    /// Started with no signals blocked (the test runner's threads block most of them, and
    /// Foundation's `Process` passes that mask on, so mpirun would never see a SIGTERM).
    static func start(ranks n: Int, _ args: [String], timeout: Int? = nil) throws -> Child {
        let argv = n > 0 ? [mpirun!, "--oversubscribe", "--allow-run-as-root", "-np", "\(n)", InterruptionTests.qdf] + args
                         : [InterruptionTests.qdf] + args
        var env = ProcessInfo.processInfo.environment
        if let t = timeout { env["QDF_MPI_TIMEOUT"] = "\(t)" }
        return try Child(argv, environment: env)
    }

    static func run(ranks n: Int, _ args: [String]) throws -> (status: Int32, stderr: String) {
        let p = try start(ranks: n, args)
        let text = p.readStderr()
        return (p.wait(), text)
    }

    static func parameters(_ run: String) throws -> [Float] { try QDFModel.load(path: run + "/model.safetensors").parameters }

    /// The learning curve without its time column.
    static func curve(_ run: String) throws -> [String] {
        try String(contentsOfFile: run + "/learning_curve.tsv", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).enumerated().filter { $0.offset != 1 }.map(\.element).joined(separator: "\t") }
    }

    /// The pid of rank `rank` among the processes mpirun started (Linux /proc).
    static func rankPID(_ rank: Int, under launcher: Int32) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let pid = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == launcher,
                  let env = FileManager.default.contents(atPath: "/proc/\(e)/environ") else { continue }
            if String(decoding: env, as: UTF8.self).split(separator: "\0").contains(Substring("OMPI_COMM_WORLD_RANK=\(rank)")) { return pid }
        }
        return nil
    }

    static func waitFor(_ condition: () -> Bool, seconds: Double, while p: Child) {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline && p.isRunning { usleep(5000) }
    }

    @Test("2 ranks train to the parameters of 1 process with 2 workers, bit for bit (and the same learning curve)",
          .enabled(if: available, skip))
    func training() throws {
        let dir = try TemporaryDirectory()
        let args = ["--epochs", "3", "--batch-size", "8"] + Self.small
        let single = try Self.run(ranks: 0, ["train", Self.data, "-o", dir.file("single"), "--workers", "2"] + args)
        #expect(single.status == 0, "\(single.stderr)")
        let ranks = try Self.run(ranks: 2, ["train", Self.data, "-o", dir.file("ranks"), "--workers", "1"] + args)
        #expect(ranks.status == 0, "\(ranks.stderr)")
        #expect(ranks.stderr.contains("data parallel: 2 ranks"), "\(ranks.stderr)")
        #expect(try Self.parameters(dir.file("single")) == Self.parameters(dir.file("ranks")))
        #expect(try Self.curve(dir.file("single")) == Self.curve(dir.file("ranks")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("single/predictions_test.tsv")))
                == Data(contentsOf: URL(fileURLWithPath: dir.file("ranks/predictions_test.tsv"))))
        // Only rank 0 wrote: no stray temporary files, one set of outputs.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("ranks")).sorted()
        #expect(files == ["learning_curve.tsv", "model.safetensors", "predictions_test.tsv", "state.safetensors"], "\(files)")
    }

    @Test("Fine-tuning with frozen orbitals on 2 ranks equals 1 process with 2 workers, bit for bit; the frozen tensors stay the source's",
          .enabled(if: available, skip))
    func fineTuningFrozen() throws {
        let dir = try TemporaryDirectory()
        let source = try Self.run(ranks: 0, ["train", Self.data, "-o", dir.file("src"), "--epochs", "1"] + Self.small)
        #expect(source.status == 0, "\(source.stderr)")
        let args = ["--init-from", dir.file("src/model.safetensors"), "--freeze", "orbitals", "--epochs", "2",
                    "--batch-size", "8", "--lr", "1e-3"]
        let single = try Self.run(ranks: 0, ["train", Self.data, "-o", dir.file("single"), "--workers", "2"] + args)
        #expect(single.status == 0, "\(single.stderr)")
        let ranks = try Self.run(ranks: 2, ["train", Self.data, "-o", dir.file("ranks"), "--workers", "1"] + args)
        #expect(ranks.status == 0, "\(ranks.stderr)")
        #expect(ranks.stderr.contains("data parallel: 2 ranks") && ranks.stderr.contains("frozen: orbitals"), "\(ranks.stderr)")
        #expect(try Self.parameters(dir.file("single")) == Self.parameters(dir.file("ranks")))
        #expect(try Self.curve(dir.file("single")) == Self.curve(dir.file("ranks")))
        let src = try QDFModel.load(path: dir.file("src/model.safetensors"))
        let tuned = try QDFModel.load(path: dir.file("ranks/model.safetensors"))
        for e in tuned.layout.entries where FrozenParts.orbitals.freezes(tensor: e.name) {
            #expect(tuned.tensor(e.name) == src.tensor(e.name), "\(e.name) changed although frozen")
        }
        #expect(tuned.tensor("W_functional.0.weight") != src.tensor("W_functional.0.weight"))
    }

    @Test("Sharded prediction writes the single-process file byte for byte (2 ranks; 3 ranks with uneven shares, in the canonical frame)",
          .enabled(if: available, skip))
    func prediction() throws {
        let dir = try TemporaryDirectory()
        let model = Shared.referenceModel
        let input = Self.data + "/train.txt"
        // 3 ranks in the canonical frame: the frames (and their averages) are formed on every rank alike.
        for (ranks, batch, frame) in [(2, 32, [String]()), (3, 5, ["--frame", "canonical"])] {
            let single = try Self.run(ranks: 0, ["predict", "--model", model, input, "-o", dir.file("single\(ranks).tsv"),
                                                 "--workers", "\(ranks)", "--batch-size", "\(batch)"] + frame)
            #expect(single.status == 0, "\(single.stderr)")
            let sharded = try Self.run(ranks: ranks, ["predict", "--model", model, input, "-o", dir.file("sharded\(ranks).tsv"),
                                                      "--workers", "1", "--batch-size", "\(batch)"] + frame)
            #expect(sharded.status == 0, "\(sharded.stderr)")
            let a = try Data(contentsOf: URL(fileURLWithPath: dir.file("single\(ranks).tsv")))
            let b = try Data(contentsOf: URL(fileURLWithPath: dir.file("sharded\(ranks).tsv")))
            #expect(!a.isEmpty && a == b, "\(ranks) ranks")
        }
        // A missing output folder: a clear error from rank 0, and every rank exits.
        let bad = try Self.run(ranks: 2, ["predict", "--model", model, input, "-o", dir.file("nowhere/p.tsv")])
        #expect(bad.status != 0 && bad.stderr.contains("the output folder does not exist"), "\(bad.stderr)")
    }

    /// Trains with `first` ranks (0: one process), stops it after its first epoch (SIGTERM to
    /// mpirun, which sends it on to the ranks as Slurm's scancel would; SIGINT to one process),
    /// resumes with `second` ranks; returns the final parameters and whether it was really
    /// interrupted.
    /// Epochs of the runs that are stopped and resumed: enough that a run cannot finish
    /// before mpirun has passed the signal on.
    static let resumeEpochs = 100

    func interruptAndResume(first: Int, second: Int, dir: TemporaryDirectory, name: String) throws -> (params: [Float], interrupted: Bool) {
        let run = dir.file(name)
        let args = ["train", Self.data, "-o", run, "--epochs", String(Self.resumeEpochs), "--batch-size", "4"] + Self.small
        let p = try Self.start(ranks: first, args + ["--workers", first == 0 ? "2" : "1"])
        Self.waitFor({ InterruptionTests.learningCurveRows(run) >= 1 }, seconds: 120, while: p)
        kill(p.pid, first == 0 ? SIGINT : SIGTERM)
        let text = p.readStderr()
        _ = p.wait()
        let interrupted = InterruptionTests.learningCurveRows(run) < Self.resumeEpochs
        if interrupted { #expect(text.contains("qdf train --resume \(run)"), "\(text)") }
        let resumed = try Self.run(ranks: second, ["train", "--resume", run, "--workers", second == 0 ? "2" : "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        return (try Self.parameters(run), interrupted)
    }

    @Test("A run stopped on 2 ranks resumes on 1 process, and one stopped in 1 process resumes on 2 ranks; both end as an uninterrupted run",
          .enabled(if: available, skip))
    func resumeAcrossRankCounts() throws {
        let dir = try TemporaryDirectory()
        let full = try Self.run(ranks: 0, ["train", Self.data, "-o", dir.file("full"), "--epochs", String(Self.resumeEpochs),
                                           "--batch-size", "4", "--workers", "2"] + Self.small)
        #expect(full.status == 0, "\(full.stderr)")
        let reference = try Self.parameters(dir.file("full"))
        let a = try interruptAndResume(first: 2, second: 0, dir: dir, name: "twoThenOne")
        let b = try interruptAndResume(first: 0, second: 2, dir: dir, name: "oneThenTwo")
        #expect(a.interrupted && b.interrupted, "the runs ended before the signal; nothing was resumed")
        #expect(a.params == reference)
        #expect(b.params == reference)
    }

    @Test("A killed rank ends the job with the resume command; the checkpoint is intact and resumes to the uninterrupted result",
          .enabled(if: available, skip))
    func killedRank() throws {
        let dir = try TemporaryDirectory()
        let args = ["--epochs", "30", "--batch-size", "4"] + Self.small
        let full = try Self.run(ranks: 0, ["train", Self.data, "-o", dir.file("full"), "--workers", "2"] + args)
        #expect(full.status == 0, "\(full.stderr)")
        let run = dir.file("killed")
        let p = try Self.start(ranks: 2, ["train", Self.data, "-o", run, "--workers", "1"] + args)
        Self.waitFor({ InterruptionTests.learningCurveRows(run) >= 1 }, seconds: 120, while: p)
        let victim = Self.rankPID(1, under: p.pid)
        #expect(victim != nil, "rank 1's process not found")
        if let v = victim { kill(v, SIGKILL) }
        let started = Date()
        let text = p.readStderr()
        #expect(p.wait() != 0)
        #expect(Date().timeIntervalSince(started) < 60, "the job took too long to end")
        #expect(text.contains("Resume with:\n  mpirun -np 2 qdf train --resume \(run)"), "\(text)")
        _ = try QDFModel.load(path: run + "/model.safetensors")
        let resumed = try Self.run(ranks: 0, ["train", "--resume", run, "--workers", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Self.parameters(run) == Self.parameters(dir.file("full")))
    }

    @Test("A rank that stops answering (SIGSTOP) makes the others exit after QDF_MPI_TIMEOUT with a clear error",
          .enabled(if: available, skip))
    func stalledRank() throws {
        let dir = try TemporaryDirectory()
        let run = dir.file("stalled")
        let p = try Self.start(ranks: 2, ["train", Self.data, "-o", run, "--workers", "1", "--epochs", "50",
                                          "--batch-size", "4"] + Self.small, timeout: 8)
        Self.waitFor({ InterruptionTests.learningCurveRows(run) >= 1 }, seconds: 120, while: p)
        let victim = Self.rankPID(1, under: p.pid)
        #expect(victim != nil, "rank 1's process not found")
        if let v = victim { kill(v, SIGSTOP) }
        let started = Date()
        let text = p.readStderr()
        let status = p.wait()
        if let v = victim { kill(v, SIGKILL) }
        #expect(status != 0)
        #expect(Date().timeIntervalSince(started) < 60, "the job took too long to end")
        #expect(text.contains("no answer from the other ranks for 8 s"), "\(text)")
        #expect(text.contains("Resume with:\n  mpirun -np 2 qdf train --resume \(run)"), "\(text)")
        _ = try QDFModel.load(path: run + "/model.safetensors")
    }

    @Test("qdf info under mpirun names the ranks and the library", .enabled(if: available, skip))
    func info() throws {
        let r = try runProcess(Self.mpirun!, ["--oversubscribe", "--allow-run-as-root", "-np", "2", InterruptionTests.qdf, "info"])
        let text = r.stdout
        #expect(r.status == 0)
        #expect(text.contains("MPI: 2 ranks") && text.contains("Open MPI"), "\(text)")
        #expect(text.components(separatedBy: "qdf 0.").count == 2, "only rank 0 prints: \(text)")
    }
}

/// A child process started with posix_spawn, no signals blocked and default dispositions;
/// standard output discarded, standard error piped.
final class Child {
    let pid: pid_t
    private let stderrRead: Int32
    private var status: Int32? = nil

    init(_ argv: [String], environment: [String: String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw QDFError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attributes, cArgs, cEnv)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); throw QDFError("cannot start \(argv[0]): error \(rc)") }
        pid = child
        stderrRead = fds[0]
    }

    deinit { close(stderrRead) }

    /// Everything the child writes to standard error, until it closes it.
    func readStderr() -> String {
        var out = [UInt8](), buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(stderrRead, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid { status = decode(s); return false }
        return true
    }

    /// The exit status (128 + the signal for a killed child).
    func wait() -> Int32 {
        if let s = status { return s }
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        status = decode(s)
        return status!
    }

    private func decode(_ s: Int32) -> Int32 { (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f) }
}
