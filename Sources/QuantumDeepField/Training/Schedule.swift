import Foundation

// Learning-rate schedules (docs/training.md). The reference's StepLR is the default; the
// others are options. A schedule is a pure function of the position in training, so a
// resumed run takes exactly the rates of an uninterrupted one (except where the schedule
// is sized to a wall-clock budget, whose position is the elapsed time).

/// The shape of the learning rate over a run.
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    /// lr · decay^⌊epoch / step_size⌋, constant within an epoch (the reference).
    case step
    /// Linear warm-up over `warmupEpochs`, then cosine decay from lr to `lrMin` at the end
    /// of the run (its last epoch, or its time budget).
    case cosine
}

/// Where a run stands, for the schedule.
public struct TrainingPosition: Sendable, Equatable {
    /// Completed epochs plus the fraction of the current one (batches done / batches).
    public var epochs: Double
    /// Training time so far (seconds, evaluation included).
    public var seconds: Double
    public init(epochs: Double, seconds: Double) { self.epochs = epochs; self.seconds = seconds }
}

extension TrainingOptions {
    /// The learning rate at `position` (for the batch that starts there). With W =
    /// `warmupEpochs` > 0 the rate is first multiplied by min(1, (p + δ)/W), p = position.epochs,
    /// δ = one batch (so the first rate is not 0). Then:
    /// - step:   lr · decay^⌊e / step_size⌋, e the current whole epoch (the reference's StepLR);
    /// - cosine: after the warm-up, lrMin + (lr − lrMin)·½(1 + cos πt), t ∈ [0, 1] the fraction
    ///           of the run after the warm-up by epochs, or position.seconds / timeBudget when a
    ///           time budget is set.
    public func learningRate(at position: TrainingPosition, batchesPerEpoch: Int) -> Double {
        let W = warmupEpochs
        let p = position.epochs
        let oneBatch = 1 / Double(max(batchesPerEpoch, 1))
        let warm = W > 0 ? min(1, (p + oneBatch) / W) : 1
        switch schedule {
        case .step:
            return learningRate * pow(lrDecay, Double(Int(p) / stepSize)) * warm
        case .cosine:
            if W > 0 && p < W { return learningRate * warm }
            let t: Double
            if let budget = timeBudget {
                // The warm-up's share of the budget is taken as W epochs' share of the epochs.
                t = min(1, max(0, position.seconds / budget))
            } else {
                t = min(1, max(0, (p - W) / max(Double(epochs) - W, 1e-9)))
            }
            return lrMin + (learningRate - lrMin) * 0.5 * (1 + cos(Double.pi * t))
        }
    }
}

/// An exponential moving average of the parameters: after each step
/// avg ← d · avg + (1 − d) · θ. Evaluated and written as the model when enabled.
public struct ParameterAverage: Sendable, Equatable {
    public let decay: Double
    public private(set) var values: [Float]
    /// The index ranges that are averaged (nil: all); the others (frozen tensors) keep
    /// their initial values exactly.
    package let ranges: [Range<Int>]?

    /// Starts at `initial` (the parameters before the first step).
    public init(decay: Double, initial: [Float], ranges: [Range<Int>]? = nil) {
        self.decay = decay
        values = initial
        self.ranges = ranges
    }

    /// Restores a saved average.
    package init(decay: Double, values: [Float], ranges: [Range<Int>]? = nil) {
        self.decay = decay; self.values = values; self.ranges = ranges
    }

    /// avg ← d · avg + (1 − d) · θ, in Float with d rounded to Float once.
    public mutating func update(with parameters: [Float]) {
        precondition(parameters.count == values.count, "parameter count")
        let d = Float(decay), e = 1 - Float(decay)
        let ranges = self.ranges ?? [0..<values.count]
        values.withUnsafeMutableBufferPointer { a in
            parameters.withUnsafeBufferPointer { p in
                for r in ranges { for i in r { a[i] = d * a[i] + e * p[i] } }
            }
        }
    }
}

/// The clock a training run's time budget counts (`TrainingOptions.budgetClock`).
public enum BudgetClock: String, Sendable, CaseIterable {
    /// Elapsed (wall-clock) seconds.
    case wall
    /// The process's CPU seconds, all threads (`CLOCK_PROCESS_CPUTIME_ID`): the measure for
    /// comparing runs that share a machine. Per process: under MPI each rank counts its own.
    case cpu
}

/// CPU time of the process so far (user + system, all threads), in seconds.
public func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
