import ArgumentParser
import Foundation
import QuantumDeepField
import QDFDistributed

struct BenchMPI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-mpi",
        abstract: "Time the exchanges of data-parallel training under mpirun/srun: the library's all-reduce and qdf's ordered gradient combination of a full gradient.",
        discussion: """
        Run it with the launcher, e.g. `mpirun -np 2 qdf bench-mpi`. The gradient has the size of \
        the bundled model's parameters (the reference hyperparameters) unless --values is given. \
        Prints, over --repeats exchanges after 10 warm-up ones, the median, fastest and slowest \
        time of: MPI_Allreduce (sum) of the gradient, qdf's ordered combination (chain and \
        broadcast, docs/distributed.md), and an 8-byte all-reduce (the per-batch stop check).
        """)

    @Option(help: "Float32 values per gradient (default: the bundled model's parameter count).") var values: Int?
    @Option(help: "Timed exchanges of each kind.") var repeats = 100

    func run() throws {
        try reportingErrors {
            guard let g = try joinMPIIfLaunched(workers: 1) else {
                throw QDFError("bench-mpi measures MPI exchanges: start it with mpirun -np N or srun -n N (N ≥ 2)")
            }
            let count = try values ?? BundledModel.load().model.layout.totalCount
            var gradient = [Float](repeating: 0, count: count)
            var buffer = [Float](repeating: 0, count: count)
            func fill() { for i in 0..<count { gradient[i] = Float((i * 7 + g.rank * 13) % 101) * 1e-3 } }
            func time(_ body: () -> Void) -> [Double] {
                var t = [Double]()
                for k in 0..<(repeats + 10) {
                    fill()
                    g.barrier()
                    let start = DispatchTime.now().uptimeNanoseconds
                    body()
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                    if k >= 10 { t.append(seconds) }
                }
                return t.sorted()
            }
            let allreduce = time { gradient.withUnsafeMutableBufferPointer { g.allreduceSum($0) } }
            let ordered = time {
                gradient.withUnsafeMutableBufferPointer { parts in
                    buffer.withUnsafeMutableBufferPointer { buf in
                        _ = combineInShareOrder(group: g, compute: defaultCompute, parts: [parts.baseAddress!], weights: [1],
                                                count: count, lastOwner: g.size - 1, combine: false, buffer: buf.baseAddress!)
                    }
                }
            }
            var flag = [0.0]
            let small = time { flag.withUnsafeMutableBufferPointer { g.sum($0) } }
            if g.rank == 0 {
                print("qdf bench-mpi — \(g.size) ranks, \(g.library)")
                print(String(format: "gradient: %d Float32 values = %.2f MB; %d timed exchanges each (after 10 warm-up)", count,
                             Double(4 * count) / 1e6, repeats))
                print("exchange                                   median ms   fastest ms   slowest ms")
                func row(_ label: String, _ t: [Double]) {
                    let padded = label.padding(toLength: 42, withPad: " ", startingAt: 0)
                    print(padded + String(format: " %9.3f   %10.3f   %10.3f", 1e3 * t[t.count / 2], 1e3 * t[0], 1e3 * t[t.count - 1]))
                }
                row("MPI_Allreduce of the gradient", allreduce)
                row("ordered combination (chain + broadcast)", ordered)
                row("8-byte MPI_Allreduce (stop check)", small)
            }
            g.finish()
        }
    }
}
