import Foundation
import QuantumDeepField
import QDFDistributed

// The CLI's side of MPI: a command started by mpirun/mpiexec/srun with more than one
// process joins the MPI job (QDFDistributed), and only rank 0 talks to the user.

/// The MPI group when qdf was launched with more than one process, else nil. `workers`
/// (the command's --workers) defaults to the cores this rank is bound to.
func joinMPIIfLaunched(workers: Int?) throws -> MPIProcessGroup? {
    try startMPIIfLaunched(workers: workers.map { max(1, $0) })
}

/// How the user starts the same job again: `mpirun -np N ` (or `srun -n N ` under Slurm
/// without mpirun), or "" for one process.
func launchPrefix(_ group: MPIProcessGroup?) -> String {
    guard let g = group else { return "" }
    let env = ProcessInfo.processInfo.environment
    if env["OMPI_COMM_WORLD_SIZE"] == nil && env["SLURM_JOB_ID"] != nil { return "srun -n \(g.size) " }
    return "mpirun -np \(g.size) "
}

/// A line for `qdf info`.
func mpiDescription() -> String {
    switch probeMPILibrary() {
    case .success(let info):
        let n = launchedProcessCount()
        return "MPI: available, \(info)" + (n.map { "; launched as \($0) process\($0 == 1 ? "" : "es")" } ?? "; not launched by mpirun/srun (1 process)")
    case .failure(let e):
        return "MPI: not available (\(e.message))"
    }
}
