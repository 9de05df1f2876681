// MPI, loaded at run time (as the core loads OpenBLAS): a build of qdf needs no MPI
// headers or libraries, and the same binary runs alone or under mpirun/srun.
//
// The C functions are declared here by hand. What differs between MPI implementations is
// the representation of handles (MPI_Comm, MPI_Datatype, MPI_Op) and MPI_STATUS_IGNORE:
//   Open MPI     handles are addresses of global objects (ompi_mpi_comm_world, ompi_mpi_float,
//                ompi_mpi_op_sum, ...), looked up with dlsym; MPI_STATUS_IGNORE is NULL.
//   MPICH ABI    handles are 32-bit integer constants (MPI_COMM_WORLD 0x44000000, MPI_DOUBLE
//                0x4c00080b, MPI_BYTE 0x4c00010d, MPI_SUM 0x58000003); MPI_STATUS_IGNORE is
//                (MPI_Status *)1. Shared by MPICH, Intel MPI, MVAPICH and Cray MPICH.
// Handles are passed as pointer-sized arguments. For MPICH's `int` handles that is the C
// calling convention's own representation on x86-64 and arm64 Linux (an int argument
// occupies the low half of a register or an 8-byte stack slot), and every call here has at
// most seven arguments.
//
// The library: $QDF_MPI_LIBRARY if set, else libmpi.so.40 (Open MPI 3–5), libmpi.so,
// libmpi.so.12 and libmpich.so.12 (MPICH ABI). The ABI: $QDF_MPI_ABI (openmpi or mpich) if
// set, else Open MPI when the library exports ompi_mpi_comm_world, else MPICH.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuantumDeepField
import Synchronization

/// Which MPI library qdf would use, and how (for `qdf info`).
public struct MPILibraryInfo: Sendable, CustomStringConvertible {
    /// The file or name that was loaded.
    public var path: String
    /// "Open MPI" or "MPICH" (the handle representation in use).
    public var abi: String
    /// MPI_Get_library_version's text (first line), or "" before MPI is initialized.
    public var version: String
    /// One line.
    public var description: String { "\(path) (\(abi) ABI)" + (version.isEmpty ? "" : ": \(version)") }
}

/// The MPI functions qdf uses, resolved from a library loaded with dlopen. Immutable after
/// `init`; the handles are only passed to MPI, never dereferenced.
final class MPILibrary {
    typealias Handle = OpaquePointer?
    typealias InitializedFn = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    typealias InitThreadFn = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    typealias CommIntFn = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias SendFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle) -> Int32
    typealias RecvFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Int32, Handle, UnsafeMutableRawPointer?) -> Int32
    typealias BcastFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    typealias AllreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias CommFn = @convention(c) (Handle) -> Int32
    typealias VoidFn = @convention(c) () -> Int32
    typealias AbortFn = @convention(c) (Handle, Int32) -> Int32
    typealias VersionFn = @convention(c) (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    // Nonblocking forms (MPI-3); the request is written into a zeroed 8-byte slot (a
    // pointer in Open MPI, an int in MPICH).
    typealias Request = UnsafeMutableRawPointer
    typealias IsendFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle, Request) -> Int32
    typealias IrecvFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Int32, Handle, Request) -> Int32
    typealias IbcastFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle, Request) -> Int32
    typealias IallreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle, Request) -> Int32
    typealias TestFn = @convention(c) (Request, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32

    let info: MPILibraryInfo
    let initialized: InitializedFn, initThread: InitThreadFn, commRank: CommIntFn, commSize: CommIntFn
    let send: SendFn, recv: RecvFn, bcast: BcastFn, allreduce: AllreduceFn, barrier: CommFn
    let finalize: VoidFn, abort: AbortFn, version: VersionFn?
    let isend: IsendFn?, irecv: IrecvFn?, ibcast: IbcastFn?, iallreduce: IallreduceFn?, test: TestFn?
    let commWorld: Handle, byte: Handle, double: Handle, float: Handle, opSum: Handle
    let statusIgnore: UnsafeMutableRawPointer?

    /// Loads the library; throws `QDFError` naming what is missing.
    init() throws {
        let env = ProcessInfo.processInfo.environment
        let candidates = env["QDF_MPI_LIBRARY"].map { [$0] }
            ?? ["libmpi.so.40", "libmpi.so", "libmpi.so.12", "libmpich.so.12", "libmpi.40.dylib", "libmpi.dylib"]
        var handle: UnsafeMutableRawPointer? = nil, path = ""
        for name in candidates {
            // RTLD_GLOBAL: Open MPI's own plugins resolve libmpi's symbols through it.
            if let h = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { handle = h; path = name; break }
        }
        guard let h = handle else {
            throw QDFError("no MPI library could be loaded (tried \(candidates.joined(separator: ", "))); install Open MPI (scripts/setup --mpi) or set QDF_MPI_LIBRARY to your libmpi")
        }
        func sym<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let p = dlsym(h, name) else { throw QDFError("\(path) lacks \(name): not an MPI library?") }
            return unsafeBitCast(p, to: type)
        }
        let forced = env["QDF_MPI_ABI"]?.lowercased()
        let openMPI: Bool
        switch forced {
        case "openmpi", "ompi", "open mpi": openMPI = true
        case "mpich": openMPI = false
        case nil, "": openMPI = dlsym(h, "ompi_mpi_comm_world") != nil
        default: throw QDFError("QDF_MPI_ABI must be openmpi or mpich, not '\(forced!)'")
        }
        if openMPI {
            func object(_ name: String) throws -> Handle {
                guard let p = dlsym(h, name) else { throw QDFError("\(path) lacks \(name): not Open MPI? (set QDF_MPI_ABI)") }
                return OpaquePointer(p)
            }
            commWorld = try object("ompi_mpi_comm_world"); byte = try object("ompi_mpi_byte")
            double = try object("ompi_mpi_double"); float = try object("ompi_mpi_float"); opSum = try object("ompi_mpi_op_sum")
            statusIgnore = nil
        } else {
            commWorld = OpaquePointer(bitPattern: 0x4400_0000); byte = OpaquePointer(bitPattern: 0x4c00_010d)
            double = OpaquePointer(bitPattern: 0x4c00_080b); float = OpaquePointer(bitPattern: 0x4c00_040a)
            opSum = OpaquePointer(bitPattern: 0x5800_0003)
            statusIgnore = UnsafeMutableRawPointer(bitPattern: 1)
        }
        initialized = try sym("MPI_Initialized", InitializedFn.self)
        initThread = try sym("MPI_Init_thread", InitThreadFn.self)
        commRank = try sym("MPI_Comm_rank", CommIntFn.self)
        commSize = try sym("MPI_Comm_size", CommIntFn.self)
        send = try sym("MPI_Send", SendFn.self)
        recv = try sym("MPI_Recv", RecvFn.self)
        bcast = try sym("MPI_Bcast", BcastFn.self)
        allreduce = try sym("MPI_Allreduce", AllreduceFn.self)
        barrier = try sym("MPI_Barrier", CommFn.self)
        finalize = try sym("MPI_Finalize", VoidFn.self)
        abort = try sym("MPI_Abort", AbortFn.self)
        version = try? sym("MPI_Get_library_version", VersionFn.self)
        isend = try? sym("MPI_Isend", IsendFn.self)
        irecv = try? sym("MPI_Irecv", IrecvFn.self)
        ibcast = try? sym("MPI_Ibcast", IbcastFn.self)
        iallreduce = try? sym("MPI_Iallreduce", IallreduceFn.self)
        test = try? sym("MPI_Test", TestFn.self)
        info = MPILibraryInfo(path: path, abi: openMPI ? "Open MPI" : "MPICH", version: "")
    }

    /// MPI_Get_library_version's first line (after MPI_Init).
    func versionString() -> String {
        guard let f = version else { return "" }
        var buffer = [CChar](repeating: 0, count: 8192)
        var length: Int32 = 0
        _ = f(&buffer, &length)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    }
}

/// What the launcher says about the job: the number of processes, or nil when qdf was not
/// started by mpirun/mpiexec/srun (Open MPI: OMPI_COMM_WORLD_SIZE; MPICH's Hydra and
/// Slurm's PMI-2: PMI_SIZE; PMIx launches under Slurm: SLURM_NTASKS with PMIX_RANK).
public func launchedProcessCount(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
    if let s = env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"], let n = Int(s) { return n }
    if env["PMIX_RANK"] != nil, let s = env["SLURM_NTASKS"], let n = Int(s) { return n }
    return nil
}

/// The process group of an MPI job (MPI_COMM_WORLD), for qdf's data parallelism.
///
/// All MPI calls are made from the thread that created the group (MPI_THREAD_FUNNELED).
/// Every blocking call is watched: if it has not returned after `timeout` seconds
/// ($QDF_MPI_TIMEOUT, default 600), a watchdog thread prints which call hung, this rank
/// and `stalledHint`, and ends the process (exit status 3) — so a rank that died or hangs
/// makes the others exit with a message instead of waiting forever (under mpirun, Open
/// MPI's runtime usually ends the job sooner, when it sees a rank die).
///
/// Waiting: MPI libraries busy-poll inside blocking calls, which on a shared machine burns
/// the CPU share the rank needs for its next step. qdf therefore starts each exchange as a
/// nonblocking call and tests it, spinning for the first 200 µs (a transfer normally ends
/// within that) and then sleeping 50 µs between tests. QDF_MPI_WAIT=spin uses the
/// library's blocking calls instead (dedicated nodes, lowest latency).
///
/// `@unchecked Sendable` invariant: the MPI functions (`MPILibrary`, whose handles are only
/// passed to MPI) and the ranks are immutable after `init`; the watchdog's deadline,
/// operation and hint are behind a `Mutex`; the MPI calls, and `finalized` with them, are
/// made by one thread only (the one that trains or predicts; the watchdog thread reads the
/// `Mutex` alone).
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let workersPerRank: [Int]
    /// The library and how it was loaded.
    public let library: MPILibraryInfo
    /// Seconds a blocking MPI call may take before the watchdog ends the process.
    public let timeout: Double
    /// Printed by the watchdog after its error (e.g. how to resume a training run).
    public var stalledHint: String {
        get { watch.withLock { $0.hint } }
        set { watch.withLock { $0.hint = newValue } }
    }

    private let mpi: MPILibrary
    private let poll: Bool
    private let watch = Mutex<(deadline: Double, operation: String, hint: String)>((0, "", ""))
    private var finalized = false

    /// Initializes MPI (MPI_Init_thread, FUNNELED) and exchanges every rank's worker count.
    /// Throws `QDFError` if no MPI library can be loaded or initialized.
    public init(workers: Int) throws {
        let lib = try MPILibrary()
        var flag: Int32 = 0
        _ = lib.initialized(&flag)
        if flag == 0 {
            var provided: Int32 = 0
            guard lib.initThread(nil, nil, 1, &provided) == 0 else { throw QDFError("MPI_Init_thread failed (\(lib.info.path))") }
        }
        var r: Int32 = 0, s: Int32 = 0
        _ = lib.commRank(lib.commWorld, &r)
        _ = lib.commSize(lib.commWorld, &s)
        var counts = [Double](repeating: 0, count: Int(s))
        counts[Int(r)] = Double(max(1, workers))
        // The first collective, before the watchdog exists (a launcher failure ends the job).
        var result = counts
        _ = counts.withUnsafeBytes { src in
            result.withUnsafeMutableBytes { dst in
                lib.allreduce(src.baseAddress, dst.baseAddress, s, lib.double, lib.opSum, lib.commWorld)
            }
        }
        var info = lib.info
        info.version = lib.versionString()
        let t = ProcessInfo.processInfo.environment["QDF_MPI_TIMEOUT"].flatMap(Double.init) ?? 600
        mpi = lib
        rank = Int(r); size = Int(s)
        library = info
        timeout = t > 0 ? t : 600
        workersPerRank = result.map { Int($0) }
        poll = ProcessInfo.processInfo.environment["QDF_MPI_WAIT"] != "spin"
            && lib.isend != nil && lib.irecv != nil && lib.ibcast != nil && lib.iallreduce != nil && lib.test != nil
        startWatchdog()
    }

    deinit { finish() }

    /// MPI_Finalize (after a barrier); called once, also by deinit. Call it before exiting
    /// normally so that the launcher does not report a rank that exited without finalizing.
    public func finish() {
        guard !finalized else { return }
        finalized = true
        watched("MPI_Barrier") { _ = mpi.barrier(mpi.commWorld) }
        _ = mpi.finalize()
    }

    /// Ends the whole job at once (MPI_Abort with `status`).
    public func abort(status: Int32) -> Never {
        _ = mpi.abort(mpi.commWorld, status)
        exit(status)
    }

    public func send(_ data: UnsafeRawBufferPointer, to peer: Int) {
        watched("MPI_Send to rank \(peer)") {
            if poll { wait("MPI_Isend") { mpi.isend!(data.baseAddress, Int32(data.count), mpi.byte, Int32(peer), 16, mpi.commWorld, $0) } }
            else { check(mpi.send(data.baseAddress, Int32(data.count), mpi.byte, Int32(peer), 16, mpi.commWorld), "MPI_Send") }
        }
    }

    public func receive(_ data: UnsafeMutableRawBufferPointer, from peer: Int) {
        watched("MPI_Recv from rank \(peer)") {
            if poll { wait("MPI_Irecv") { mpi.irecv!(data.baseAddress, Int32(data.count), mpi.byte, Int32(peer), 16, mpi.commWorld, $0) } }
            else { check(mpi.recv(data.baseAddress, Int32(data.count), mpi.byte, Int32(peer), 16, mpi.commWorld, mpi.statusIgnore), "MPI_Recv") }
        }
    }

    public func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int) {
        watched("MPI_Bcast from rank \(root)") {
            if poll { wait("MPI_Ibcast") { mpi.ibcast!(data.baseAddress, Int32(data.count), mpi.byte, Int32(root), mpi.commWorld, $0) } }
            else { check(mpi.bcast(data.baseAddress, Int32(data.count), mpi.byte, Int32(root), mpi.commWorld), "MPI_Bcast") }
        }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        let input = Array(values)
        watched("MPI_Allreduce") {
            input.withUnsafeBytes { src in
                if poll {
                    wait("MPI_Iallreduce") { mpi.iallreduce!(src.baseAddress, values.baseAddress, Int32(values.count), mpi.double, mpi.opSum, mpi.commWorld, $0) }
                } else {
                    check(mpi.allreduce(src.baseAddress, values.baseAddress, Int32(values.count), mpi.double, mpi.opSum, mpi.commWorld), "MPI_Allreduce")
                }
            }
        }
    }

    /// MPI_Allreduce (sum) of Float32 values in place: the library's own all-reduce, whose
    /// summation order is the library's (used by `qdf bench-mpi` for comparison).
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        let input = Array(values)
        watched("MPI_Allreduce") {
            input.withUnsafeBytes { src in
                if poll {
                    wait("MPI_Iallreduce") { mpi.iallreduce!(src.baseAddress, values.baseAddress, Int32(values.count), mpi.float, mpi.opSum, mpi.commWorld, $0) }
                } else {
                    check(mpi.allreduce(src.baseAddress, values.baseAddress, Int32(values.count), mpi.float, mpi.opSum, mpi.commWorld), "MPI_Allreduce")
                }
            }
        }
    }

    /// Starts a nonblocking call (`start` gets the request slot) and tests it until done:
    /// spinning for 200 µs, then sleeping 50 µs between tests.
    private func wait(_ what: String, _ start: (UnsafeMutableRawPointer) -> Int32) {
        var request: UInt64 = 0
        withUnsafeMutableBytes(of: &request) { slot in
            check(start(slot.baseAddress!), what)
            let begin = DispatchTime.now().uptimeNanoseconds
            var done: Int32 = 0
            while true {
                check(mpi.test!(slot.baseAddress!, &done, mpi.statusIgnore), "MPI_Test")
                if done != 0 { return }
                if DispatchTime.now().uptimeNanoseconds - begin > 200_000 { usleep(50) }
            }
        }
    }

    /// MPI_Barrier.
    public func barrier() { watched("MPI_Barrier") { _ = mpi.barrier(mpi.commWorld) } }

    private func check(_ code: Int32, _ what: String) {
        if code != 0 {
            FileHandle.standardError.write(Data("qdf (rank \(rank) of \(size)): \(what) failed with MPI error \(code)\n".utf8))
            abort(status: 3)
        }
    }

    // MARK: - Watchdog

    private func watched(_ operation: String, _ body: () -> Void) {
        let deadline = Date().timeIntervalSince1970 + timeout
        watch.withLock { $0.deadline = deadline; $0.operation = operation }
        body()
        watch.withLock { $0.deadline = 0 }
    }

    private func startWatchdog() {
        let me = rank, n = size, limit = timeout
        let thread = Thread { [weak self] in
            while let group = self {
                let (deadline, operation, hint) = group.watch.withLock { ($0.deadline, $0.operation, $0.hint) }
                if deadline > 0 && Date().timeIntervalSince1970 > deadline {
                    let text = "qdf (rank \(me) of \(n)): no answer from the other ranks for \(Int(limit)) s in \(operation): a rank died, hangs or was stopped (QDF_MPI_TIMEOUT sets the limit); exiting.\n" + (hint.isEmpty ? "" : hint + "\n")
                    FileHandle.standardError.write(Data(text.utf8))
                    _exit(3)
                }
                usleep(200_000)
            }
        }
        thread.stackSize = 1 << 16
        thread.start()
    }
}

/// Starts MPI when qdf was launched by an MPI launcher with more than one process, with
/// `workers` engines on this rank (default: the cores it is bound to); nil otherwise.
public func startMPIIfLaunched(workers: Int?) throws -> MPIProcessGroup? {
    guard let n = launchedProcessCount(), n > 1 else { return nil }
    return try MPIProcessGroup(workers: workers ?? defaultWorkers)  // the cores this rank is bound to (availableCores)
}

/// The MPI library qdf would load (nothing is initialized), or the reason none can be.
public func probeMPILibrary() -> Result<MPILibraryInfo, QDFError> {
    do { return .success(try MPILibrary().info) } catch let e as QDFError { return .failure(e) } catch {
        return .failure(QDFError("\(error)"))
    }
}
