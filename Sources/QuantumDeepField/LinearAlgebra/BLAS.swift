// BLAS: the system's OpenBLAS, loaded at run time so that its CPU kernel can be
// chosen before the library initializes.
//
// Debian's OpenBLAS 0.3.21 misdetects some CPUs (it falls back to the
// "Prescott" kernel, ~8x slower than the AVX2/AVX-512 kernels). Before loading
// the library we read the CPU's instruction-set flags and, only when the user
// has not set OPENBLAS_CORETYPE, set it to the best kernel those flags allow
// (SkylakeX/Cooperlake for AVX-512, Haswell for AVX2+FMA). A kernel the CPU
// cannot run is never chosen (SkylakeX on an AVX2-only CPU dies with SIGILL).
//
// Which library: QDF_BLAS chooses one by name (openblas, scipy-openblas, blis, mkl, builtin) or
// by path; otherwise the library `qdf bench --compare-blas` measured fastest on this CPU
// model (`GEMMChoice`, recorded in a cache file), else the first of `GEMMLibrary.known`
// that loads. OpenBLAS and
// scipy-openblas (the OpenBLAS build SciPy ships on PyPI, symbols prefixed scipy_) take
// the kernel choice above; BLIS and oneMKL (PyPI's mkl wheel, run with its sequential
// layer) pick their own kernels. If no library can be loaded, a
// portable Swift GEMM is used instead and `BLAS.info` says so.
//
// The choice is made once per process, from the environment given to
// `BLAS.select(environment:)` (the qdf command calls it at start-up); `BLAS.shared` is that
// choice.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// How a GEMM operand enters C = alpha · op(A) · op(B) + beta · C (row-major Float32):
/// `.none` as stored (op(X) = X), `.transpose` transposed (op(X) = Xᵀ).
package enum Transpose: Sendable { case none, transpose }

/// A GEMM library qdf can load at run time.
public struct GEMMLibrary: Sendable, Equatable {
    /// Its name for QDF_BLAS and reports.
    public var name: String
    /// File names tried with dlopen, in order.
    public var files: [String]
    /// The prefix of its exported symbols ("scipy_" for scipy-openblas).
    public var prefix: String

    public init(name: String, files: [String], prefix: String) {
        self.name = name
        self.files = files
        self.prefix = prefix
    }

    /// The libraries qdf knows, in the default order of preference: Debian's OpenBLAS
    /// (libopenblas0), the OpenBLAS of PyPI's scipy-openblas32 (libscipy_openblas.so on the
    /// library path; `scripts/setup --blas`), BLIS (libblis4), Intel's oneMKL (libmkl_rt from
    /// PyPI's mkl wheel, `scripts/setup --blas`; run sequential).
    public static let known: [GEMMLibrary] = [
        GEMMLibrary(name: "openblas", files: ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.0.dylib"], prefix: ""),
        GEMMLibrary(name: "scipy-openblas", files: ["libscipy_openblas.so"], prefix: "scipy_"),
        GEMMLibrary(name: "blis", files: ["libblis.so.4", "libblis.so"], prefix: ""),
        GEMMLibrary(name: "mkl", files: ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"], prefix: ""),
    ]
}

/// What `qdf info` and `qdf bench` report about the GEMM library in use.
public struct BLASInfo: Sendable, CustomStringConvertible {
    /// Path or name of the loaded library, or "builtin" for the portable Swift GEMM.
    public var library: String
    /// The library's name (`GEMMLibrary.name`, "builtin", or "path" for a QDF_BLAS path).
    public var name: String = "builtin"
    /// Why it was chosen.
    public var choice: String = ""
    /// `openblas_get_config()`.
    public var config: String
    /// `openblas_get_corename()`: the CPU kernel in use.
    public var coreName: String
    /// BLAS's own threads (1 unless the environment set it).
    public var threads: Int
    /// How OPENBLAS_CORETYPE was decided.
    public var coreTypeSetting: String
    /// A five-line, human-readable summary (library, config, kernel, threads, core type).
    public var description: String {
        "BLAS: \(library)\n  chosen: \(choice)\n  config: \(config)\n  kernel: \(coreName)\n  threads: \(threads)\n  OPENBLAS_CORETYPE: \(coreTypeSetting)"
    }
}

/// The GEMM library of the process (loaded once: a shared library is per process), and
/// its flop counter. The engine reaches it only through a `ComputeBackend`. Immutable after
/// loading; `sgemm` may be called from several threads at once (the counter is atomic).
public final class BLAS: Sendable {
    typealias SgemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                        Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StringFn = @convention(c) () -> UnsafePointer<CChar>?
    typealias IntFn = @convention(c) () -> Int32
    typealias SetIntFn = @convention(c) (Int32) -> Void

    typealias BF16GemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                           UnsafePointer<UInt16>?, Int32, UnsafePointer<UInt16>?, Int32,
                                           Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    private let sgemmFn: SgemmFn?
    /// `cblas_gemm_bf16bf16f32` (oneMKL), if the library has it.
    private let bf16GemmFn: BF16GemmFn?
    private let getThreadsFn: (@Sendable () -> Int32)?
    /// What was loaded and how (for `qdf info` and `qdf bench`).
    public let info: BLASInfo
    /// Whether the environment set BLAS's thread count (then qdf leaves it).
    public let userSetThreads: Bool

    /// The process's GEMM library: the one `select(environment:)` chose. A program that never
    /// calls `select` gets, at the first use of `shared`, what `select` gives with the
    /// process's environment.
    public static var shared: BLAS {
        selection.withLock { chosen in
            if let b = chosen { return b }
            let b = BLAS(environment: ProcessInfo.processInfo.environment)
            chosen = b
            return b
        }
    }
    private static let selection = Mutex<BLAS?>(nil)

    /// Chooses and loads the process's GEMM library, once; later calls (and `shared`) return
    /// the first choice, since a loaded library and its settings stay for the process's life.
    /// The choice depends on `environment` alone (with the CPU and the files it names):
    /// - `QDF_BLAS`: `builtin` (the portable GEMM), a name of `GEMMLibrary.known`
    ///   (openblas, scipy-openblas, blis, mkl) or a library's path; unset: the library
    ///   recorded for this CPU model by `qdf bench --compare-blas` (`GEMMChoice`, stored
    ///   under `QDF_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`), else the first of
    ///   `GEMMLibrary.known` that loads;
    /// - `OPENBLAS_CORETYPE`: left as set; unset, qdf sets it from the CPU flags before
    ///   OpenBLAS loads (the only change to the process's environment);
    /// - `OPENBLAS_NUM_THREADS`, `GOTO_NUM_THREADS`, `OMP_NUM_THREADS`, `BLIS_NUM_THREADS`,
    ///   `MKL_NUM_THREADS`: any of them set leaves the library's thread count as it is;
    ///   otherwise the library runs one thread (qdf parallelizes over molecules);
    /// - `MKL_THREADING_LAYER`: unset, oneMKL runs its sequential layer.
    /// The `qdf` command calls it once at start-up with its environment.
    @discardableResult
    public static func select(environment: [String: String]) -> BLAS {
        selection.withLock { chosen in
            if let b = chosen { return b }
            let b = BLAS(environment: environment)
            chosen = b
            return b
        }
    }

    /// Chooses OPENBLAS_CORETYPE from the CPU flags (never overriding a user's value).
    /// Returns a description of the decision.
    static func chooseCoreType(environment: [String: String]) -> String {
        if let user = environment["OPENBLAS_CORETYPE"], !user.isEmpty {
            return "\(user) (set by the user, left as is)"
        }
        guard let flags = CPUFlags.current() else { return "unset (CPU flags unknown)" }
        let choice: String?
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl")
            && flags.contains("avx512dq") {
            choice = flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        } else if flags.contains("avx2") && flags.contains("fma") {
            choice = "Haswell"
        } else {
            choice = nil
        }
        guard let c = choice else { return "unset (no AVX2/AVX-512 on this CPU)" }
        setenv("OPENBLAS_CORETYPE", c, 0)
        return "\(c) (chosen by qdf from the CPU flags)"
    }

    /// The library QDF_BLAS names, or the recorded or first of `GEMMLibrary.known` that loads
    /// (`select(environment:)`).
    private convenience init(environment: [String: String]) {
        let env = environment["QDF_BLAS"].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if env.isEmpty {
            let order = GEMMLibrary.known.map(\.name).joined(separator: ", ")
            let path = GEMMChoice.storePath(environment: environment)
            let (record, problem) = GEMMChoice.lookup(cpu: GEMMChoice.cpuKey(), path: path)
            if let r = record, GEMMLibrary.known.contains(where: { $0.name == r.chosen }) {
                self.init(candidates: GEMMChoice.ordered(GEMMLibrary.known, preferring: r.chosen),
                          choice: r.summary + "; recorded in \(path)", preferred: r.chosen, environment: environment)
            } else {
                let why = problem ?? "not measured on this CPU model: `qdf bench --compare-blas` measures each and records the fastest"
                self.init(candidates: GEMMLibrary.known, choice: "the first that loads of \(order) (QDF_BLAS unset; \(why))",
                          environment: environment)
            }
        } else if env == "builtin" {
            self.init(candidates: [], choice: "QDF_BLAS=builtin", environment: environment)
        } else if let lib = GEMMLibrary.known.first(where: { $0.name == env }) {
            self.init(candidates: [lib], choice: "QDF_BLAS=\(env)", environment: environment)
        } else {
            let prefix = env.contains("scipy_openblas") ? "scipy_" : ""
            self.init(candidates: [GEMMLibrary(name: "path", files: [env], prefix: prefix)], choice: "QDF_BLAS=\(env)",
                      environment: environment)
        }
    }

    /// Loads the first of `candidates` that has cblas_sgemm (the portable GEMM if none).
    /// Libraries are opened RTLD_LOCAL, so several can be loaded side by side (`qdf bench
    /// --compare-blas` measures each).
    /// `preferred`: the library a recorded measurement chose; if another one ends up loaded,
    /// the choice says so. `environment`: as for `select(environment:)` (OPENBLAS_CORETYPE,
    /// MKL_THREADING_LAYER and the thread counts).
    public init(candidates: [GEMMLibrary], choice: String, preferred: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        let decision = BLAS.chooseCoreType(environment: environment)
        var handle: UnsafeMutableRawPointer? = nil
        var loadedName = "builtin", chosen = GEMMLibrary(name: "builtin", files: [], prefix: "")
        search: for lib in candidates {
            for file in lib.files {
                guard let h = dlopen(file, RTLD_NOW | RTLD_LOCAL) else { continue }
                if dlsym(h, lib.prefix + "cblas_sgemm") != nil { handle = h; loadedName = file; chosen = lib; break search }
                dlclose(h)
            }
        }
        func sym<T>(_ name: String, _ type: T.Type) -> T? {
            guard let h = handle, let p = dlsym(h, chosen.prefix + name) else { return nil }
            return unsafeBitCast(p, to: type)
        }
        // oneMKL: its sequential layer (qdf runs one single-threaded BLAS per worker; the
        // threaded layers would also need Intel's OpenMP runtime), unless the user chose one.
        var sequentialMKL = false
        if environment["MKL_THREADING_LAYER"] == nil,
           let setLayer = sym("MKL_Set_Threading_Layer", (@convention(c) (Int32) -> Int32).self) {
            _ = setLayer(1)  // MKL_THREADING_SEQUENTIAL
            sequentialMKL = true
        }
        sgemmFn = sym("cblas_sgemm", SgemmFn.self)
        bf16GemmFn = sgemmFn == nil ? nil : sym("cblas_gemm_bf16bf16f32", BF16GemmFn.self)
        // BLIS counts threads in dim_t (64-bit): wrap its setter and getter.
        typealias SetDimFn = @convention(c) (Int) -> Void
        typealias DimFn = @convention(c) () -> Int
        var setThreadsFn: ((Int32) -> Void)? = nil
        var getThreads: (@Sendable () -> Int32)? = nil
        if let set = sym("openblas_set_num_threads", SetIntFn.self) {
            setThreadsFn = { (n: Int32) -> Void in set(n) }
        } else if let set = sym("bli_thread_set_num_threads", SetDimFn.self) {
            setThreadsFn = { (n: Int32) -> Void in set(Int(n)) }
        } else if let set = sym("MKL_Set_Num_Threads", SetIntFn.self) {
            setThreadsFn = { (n: Int32) -> Void in set(n) }
        }
        if let get = sym("openblas_get_num_threads", IntFn.self) {
            getThreads = { @Sendable () -> Int32 in get() }
        } else if let get = sym("bli_thread_get_num_threads", DimFn.self) {
            getThreads = { @Sendable () -> Int32 in Int32(truncatingIfNeeded: get()) }
        } else if let get = sym("MKL_Get_Max_Threads", IntFn.self) {
            getThreads = { @Sendable () -> Int32 in get() }
        }
        getThreadsFn = getThreads
        var config = sym("openblas_get_config", StringFn.self).flatMap { $0() }.map { String(cString: $0) } ?? "-"
        var core = sym("openblas_get_corename", StringFn.self).flatMap { $0() }.map { String(cString: $0) } ?? "-"
        if let version = sym("bli_info_get_version_str", StringFn.self).flatMap({ $0() }) {
            config = "BLIS " + String(cString: version)
            typealias ArchString = @convention(c) (Int32) -> UnsafePointer<CChar>?
            if let query = sym("bli_arch_query_id", IntFn.self), let name = sym("bli_arch_string", ArchString.self),
               let s = name(query()) { core = String(cString: s) }
        }
        typealias VersionFn = @convention(c) (UnsafeMutablePointer<CChar>?, Int32) -> Void
        if let version = sym("mkl_get_version_string", VersionFn.self) {
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { version($0.baseAddress, 255) }
            config = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.trimmingCharacters(in: .whitespaces)
            core = "chosen by MKL at run time" + (sequentialMKL ? ", sequential" : "")
        }
        if sgemmFn == nil {
            loadedName = "builtin (portable Swift GEMM; install libopenblas0 for full speed)"
            if choice.hasPrefix("QDF_BLAS=") && choice != "QDF_BLAS=builtin" {
                // An explicit choice that cannot be honoured is said at once, not only in `qdf info`.
                let names = candidates.flatMap(\.files).joined(separator: ", ")
                FileHandle.standardError.write(Data("qdf: warning: \(choice): cannot load \(names) (or it has no cblas_sgemm); using the portable Swift GEMM, which is much slower\n".utf8))
            }
        }
        // qdf parallelizes over molecules (one worker per core, each with its own
        // engine), so BLAS itself runs single-threaded: faster on QDF's mid-sized GEMMs,
        // no idle spinning during the scalar work, and results that do not depend on
        // timing. A thread count the user set in the environment is left as is.
        userSetThreads = ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"]
            .contains { environment[$0] != nil }
        if !userSetThreads { setThreadsFn?(1) }
        var said = choice
        if sgemmFn == nil && !candidates.isEmpty { said += "; none could be loaded" }
        else if let p = preferred, p != chosen.name { said += "; but \(p) could not be loaded now, so \(chosen.name) is used" }
        info = BLASInfo(library: loadedName, name: sgemmFn == nil ? "builtin" : chosen.name,
                        choice: said,
                        config: config, coreName: core,
                        threads: Int(getThreadsFn?() ?? 1), coreTypeSetting: decision)
    }

    /// Floating-point operations issued through `sgemm` (2·m·n·k each), for benchmarks.
    public var flopCount: UInt64 { flops.load(ordering: .relaxed) }

    /// Whether the library computes GEMMs of bfloat16 operands (`gemmBF16`).
    public var offersBF16: Bool { bf16GemmFn != nil }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C with A and B in bfloat16 (row-major, raw
    /// bits), C in Float32, accumulated in Float32 (oneMKL's `cblas_gemm_bf16bf16f32`).
    /// Flop-counted like `sgemm`. Traps unless `offersBF16`.
    package func gemmBF16(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                         alpha: Float, a: UnsafePointer<UInt16>, lda: Int,
                         b: UnsafePointer<UInt16>, ldb: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        flops.wrappingAdd(UInt64(2 * m * n * k), ordering: .relaxed)
        bf16GemmFn!(101, transA == .none ? 111 : 112, transB == .none ? 111 : 112,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    private let flops = Atomic<UInt64>(0)

    /// BLAS's own thread count, fixed when the library is loaded: 1 unless the environment
    /// set it. qdf never changes it afterwards, so concurrent callers cannot race on it.
    public var threads: Int { Int(getThreadsFn?() ?? 1) }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major Float32.
    /// op(A) is m×k (A is m×k, or k×m when transposed), op(B) is k×n; `lda`, `ldb`, `ldc`
    /// are row strides. Pointers are the caller's, borrowed for the call; C must not alias A or B.
    @inline(__always)
    package func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                      alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        flops.wrappingAdd(UInt64(2 * m * n * k), ordering: .relaxed)
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
            return
        }
        if let f = sgemmFn {
            f(101, transA == .none ? 111 : 112, transB == .none ? 111 : 112,
              Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        } else {
            BLAS.portableSgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                               b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// A straightforward GEMM used when no BLAS library is available (and in tests
    /// as an independent computation). Same contract as `sgemm`, but not flop-counted;
    /// terms whose alpha·op(A) entry is 0 are skipped (a NaN/Inf in B there does not propagate).
    package static func portableSgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                                     alpha: Float, a: UnsafePointer<Float>, lda: Int,
                                     b: UnsafePointer<Float>, ldb: Int,
                                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let crow = c + i * ldc
            if beta == 0 { crow.update(repeating: 0, count: n) }
            else if beta != 1 { for j in 0..<n { crow[j] *= beta } }
            for p in 0..<k {
                let aip = alpha * (transA == .none ? a[i * lda + p] : a[p * lda + i])
                if aip == 0 { continue }
                if transB == .none {
                    let brow = b + p * ldb
                    for j in 0..<n { crow[j] += aip * brow[j] }
                } else {
                    for j in 0..<n { crow[j] += aip * b[j * ldb + p] }
                }
            }
        }
    }
}

/// The CPU's instruction-set flags, from /proc/cpuinfo (Linux).
enum CPUFlags {
    static func current() -> Set<String>? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return nil
    }
}
