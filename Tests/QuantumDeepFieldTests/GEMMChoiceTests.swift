import Foundation
import Testing
import QuantumDeepField

/// The GEMM library chosen by measurement (`GEMMChoice`, `qdf bench --compare-blas`).
@Suite("GEMM library chosen by measurement")
struct GEMMChoiceTests {
    static let cpuinfo = """
        processor\t: 0
        vendor_id\t: AuthenticAMD
        cpu family\t: 25
        model\t\t: 1
        model name\t: AMD EPYC
        flags\t\t: fpu avx2 fma

        processor\t: 1
        vendor_id\t: GenuineIntel
        model name\t: something else

        """

    @Test("The CPU model is read from the first processor of /proc/cpuinfo")
    func cpuKey() {
        #expect(GEMMChoice.cpuKey(cpuinfo: Self.cpuinfo) == "AuthenticAMD, AMD EPYC, family 25, model 1")
        #expect(GEMMChoice.cpuKey(cpuinfo: nil).hasPrefix("unknown "))
        #expect(GEMMChoice.cpuKey(cpuinfo: "garbage without fields").hasPrefix("unknown "))
        #expect(!GEMMChoice.cpuKey().isEmpty)
    }

    @Test("The fastest library is chosen (by the harmonic mean over the shapes); ties go to the default order")
    func chooses() {
        #expect(GEMMChoice.harmonicMean([169.8, 134.6, 163.4]) > 154.2 && GEMMChoice.harmonicMean([169.8, 134.6, 163.4]) < 154.4)
        #expect(GEMMChoice.harmonicMean([100, 100]) == 100)
        #expect(GEMMChoice.harmonicMean([]) == 0 && GEMMChoice.harmonicMean([100, 0]) == 0)
        let c = GEMMChoice(cpu: "x", measured: "t", gflops: ["openblas": 143.3, "scipy-openblas": 141.0, "blis": 154.3])
        #expect(c.chosen == "blis")
        #expect(c.summary.hasPrefix("blis, the fastest") && c.summary.contains("openblas 143.3"))
        let tie = GEMMChoice(cpu: "x", measured: "t", gflops: ["blis": 150, "openblas": 150])
        #expect(tie.chosen == "openblas")
        let names = GEMMChoice.ordered(GEMMLibrary.known, preferring: "blis").map(\.name)
        #expect(names.first == "blis" && names.count == GEMMLibrary.known.count && Set(names) == Set(GEMMLibrary.known.map(\.name)))
        #expect(GEMMChoice.ordered(GEMMLibrary.known, preferring: "nonesuch") == GEMMLibrary.known)
    }

    @Test("Records are kept per CPU model; a second measurement replaces the first; an unreadable file is ignored and named")
    func store() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("cache/gemm-choice.json")
        #expect(GEMMChoice.lookup(cpu: "a", path: path).choice == nil)
        #expect(GEMMChoice.lookup(cpu: "a", path: path).problem == nil)
        try GEMMChoice(cpu: "a", measured: "1", gflops: ["openblas": 2, "blis": 1]).save(path: path)
        try GEMMChoice(cpu: "b", measured: "2", gflops: ["openblas": 1, "blis": 2]).save(path: path)
        #expect(GEMMChoice.lookup(cpu: "a", path: path).choice?.chosen == "openblas")
        #expect(GEMMChoice.lookup(cpu: "b", path: path).choice?.chosen == "blis")
        try GEMMChoice(cpu: "a", measured: "3", gflops: ["openblas": 1, "blis": 2]).save(path: path)
        #expect(GEMMChoice.load(path: path).records.count == 2)
        #expect(GEMMChoice.lookup(cpu: "a", path: path).choice?.measured == "3")
        #expect(GEMMChoice.lookup(cpu: "c", path: path).choice == nil)

        try "{ not json".write(toFile: path, atomically: true, encoding: .utf8)
        let broken = GEMMChoice.lookup(cpu: "a", path: path)
        #expect(broken.choice == nil)
        #expect(broken.problem?.contains(path) == true && broken.problem?.contains("ignored") == true)

        // A directory that cannot be created: the error names the file.
        let blocked = try dir.write("plain-file", "x") + "/sub/gemm-choice.json"
        #expect { try GEMMChoice(cpu: "a", measured: "1", gflops: ["openblas": 1]).save(path: blocked) } throws: { e in
            "\(e)".contains(blocked)
        }
    }

    @Test("Where the records are kept: QDF_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache")
    func storePath() {
        #expect(GEMMChoice.storePath(environment: ["QDF_CACHE_DIR": "/q", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/q/gemm-choice.json")
        #expect(GEMMChoice.storePath(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/qdf/gemm-choice.json")
        #expect(GEMMChoice.storePath(environment: ["HOME": "/h"]) == "/h/.cache/qdf/gemm-choice.json")
        #expect(GEMMChoice.storePath(environment: ["QDF_CACHE_DIR": "", "HOME": "/h"]) == "/h/.cache/qdf/gemm-choice.json")
    }

    @Test("A preferred library is loaded first; one that cannot be loaded is said in the choice")
    func preferred() {
        for lib in GEMMLibrary.known {
            let alone = BLAS(candidates: [lib], choice: "test")
            guard alone.info.name == lib.name else { continue }
            let b = BLAS(candidates: GEMMChoice.ordered(GEMMLibrary.known, preferring: lib.name), choice: "measured", preferred: lib.name)
            #expect(b.info.name == lib.name)
            #expect(b.info.choice == "measured")
        }
        let missing = GEMMLibrary(name: "missing", files: ["libdoes-not-exist.so"], prefix: "")
        let b = BLAS(candidates: [missing] + GEMMLibrary.known, choice: "measured", preferred: "missing")
        if b.info.name != "builtin" {
            #expect(b.info.choice.contains("missing could not be loaded now, so \(b.info.name) is used"), "\(b.info.choice)")
        }
    }

    @Test("The process's library is chosen once: select(environment:) and shared give the first choice")
    func selectOnce() {
        let first = BLAS.select(environment: ProcessInfo.processInfo.environment)
        #expect(BLAS.shared === first)
        // A later call with another environment does not load another library.
        #expect(BLAS.select(environment: ["QDF_BLAS": "builtin"]) === first)
        // The environment given is the input of the choice: thread counts it sets are left alone.
        let own = BLAS(candidates: GEMMLibrary.known, choice: "test", environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(own.userSetThreads)
        #expect(!BLAS(candidates: GEMMLibrary.known, choice: "test", environment: [:]).userSetThreads)
    }

    @Test("`qdf bench --compare-blas` records the fastest library and `qdf info` then loads it and says why",
          .enabled(if: InterruptionTests.available, "needs the qdf executable"))
    func benchRecordsAndInfoUses() throws {
        let dir = try TemporaryDirectory()
        let env = ["QDF_CACHE_DIR": dir.path, "QDF_BLAS": ""]
        let before = try runProcess(InterruptionTests.qdf, ["info"], environment: env)
        #expect(before.status == 0)
        #expect(before.stdout.contains("not measured on this CPU model"), "\(before.stdout)")
        let bench = try runProcess(InterruptionTests.qdf, ["bench", "--compare-blas"], environment: env)
        #expect(bench.status == 0, "\(bench.stderr)")
        let record = GEMMChoice.lookup(cpu: GEMMChoice.cpuKey(), path: dir.file("gemm-choice.json")).choice
        #expect(record != nil, "\(bench.stdout)")
        guard let r = record else { return }
        #expect(bench.stdout.contains("qdf now loads \(r.chosen) first"))
        // Every library that loaded was measured, and the choice is the fastest of them.
        #expect(r.gflops.values.allSatisfy { $0 > 0 } && r.gflops[r.chosen] == r.gflops.values.max())
        let after = try runProcess(InterruptionTests.qdf, ["info"], environment: env)
        #expect(after.stdout.contains("chosen: \(r.chosen), the fastest at the model's shapes"), "\(after.stdout)")
        #expect(after.stdout.contains("recorded in \(dir.file("gemm-choice.json"))"))
        // QDF_BLAS still overrides the record.
        let forced = try runProcess(InterruptionTests.qdf, ["info"], environment: ["QDF_CACHE_DIR": dir.path, "QDF_BLAS": "builtin"])
        #expect(forced.stdout.contains("chosen: QDF_BLAS=builtin"), "\(forced.stdout)")
        // --no-record measures without touching the record.
        let again = try runProcess(InterruptionTests.qdf, ["bench", "--compare-blas", "--no-record", "--json"], environment: env)
        #expect(again.status == 0)
        #expect(GEMMChoice.lookup(cpu: GEMMChoice.cpuKey(), path: dir.file("gemm-choice.json")).choice == r)
    }
}
