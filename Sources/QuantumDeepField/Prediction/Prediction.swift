import Foundation

// What a prediction produces: one `Prediction` per molecule, the `PredictionSummary` of a
// run, and `ErrorSums`, the one place where errors against known values are summed
// (MAE and RMSE per output, and the MAE over molecules × outputs the trainer records).

/// The prediction for one molecule.
public struct Prediction: Sendable {
    /// The molecule's id as read (sanitised when written).
    public var id: String
    /// The file it came from (`<stdin>` for standard input; "" for molecules in memory).
    public var source: String
    /// The line where it starts in that file (0 for molecules in memory).
    public var line: Int
    /// M, its number of atoms.
    public var atomCount: Int
    /// Ê: P values in the model's property unit (e.g. eV); the mean over orientations when
    /// predicted in several.
    public var predicted: [Float]
    /// The input's property values, when it has them (empty otherwise).
    public var correct: [Double]
    /// The standard deviation over orientations per output (sample, K − 1 in the
    /// denominator); empty when predicted in one orientation.
    public var spread: [Float]

    /// A prediction; `source`, `line` and `spread` are for molecules read from files in
    /// several orientations.
    public init(id: String, source: String = "", line: Int = 0, atomCount: Int, predicted: [Float],
                correct: [Double], spread: [Float] = []) {
        self.id = id; self.source = source; self.line = line; self.atomCount = atomCount
        self.predicted = predicted; self.correct = correct; self.spread = spread
    }

    /// |E − Ê| per output, in Float32 (the model's precision); empty without known values.
    public var errors: [Float] {
        zip(correct, predicted).map { Float(abs($0 - Double($1))) }
    }
}

/// Sums of the errors of predictions against known values, per output.
public struct ErrorSums: Sendable, Equatable {
    /// Molecules with P known values (the denominator of `mae` and `rmse`).
    public private(set) var count = 0
    /// Σ |E − Ê| per output.
    public private(set) var absolute: [Double]
    /// Σ (E − Ê)² per output.
    public private(set) var squared: [Double]
    /// Σ |E − Ê| over molecules and outputs, summed molecule by molecule (`overallMAE`).
    public private(set) var absoluteOverAll = 0.0

    /// Empty sums for a model with `outputs` outputs.
    public init(outputs: Int) {
        absolute = [Double](repeating: 0, count: outputs)
        squared = absolute
    }

    /// Adds one molecule; ignored unless `correct` has one value per output.
    public mutating func add(predicted: [Float], correct: [Double]) {
        guard correct.count == absolute.count else { return }
        count += 1
        for q in 0..<absolute.count {
            let e = Double(predicted[q]) - correct[q]
            absolute[q] += abs(e)
            squared[q] += e * e
            absoluteOverAll += abs(e)
        }
    }

    /// Mean absolute error per output (property unit, e.g. eV), or nil if no molecule had values.
    public var mae: [Double]? { count > 0 ? absolute.map { $0 / Double(count) } : nil }
    /// Root-mean-square error per output (property unit), or nil if no molecule had values.
    public var rmse: [Double]? { count > 0 ? squared.map { ($0 / Double(count)).squareRoot() } : nil }
    /// The mean absolute error over molecules × outputs (0 when there were none): the
    /// learning curve's MAE.
    public var overallMAE: Double { absoluteOverAll / Double(max(count * absolute.count, 1)) }
}

/// Totals of a `Predictor.run`: counts, skipped molecules and errors.
public struct PredictionSummary: Sendable {
    /// Molecules predicted (skipped ones not included).
    public var molecules = 0
    /// Molecules the predictor skipped for elements the model never learned (`skipUnknown`),
    /// with the reason.
    public var skipped: [(id: String, reason: String)] = []
    /// The errors over the molecules with known values.
    public var errors: ErrorSums
    /// Wall-clock seconds of the run, reading included.
    public var seconds = 0.0

    /// An empty summary for a model with `outputs` outputs.
    public init(outputs: Int) { errors = ErrorSums(outputs: outputs) }

    /// Counts one prediction and its errors.
    public mutating func add(_ p: Prediction) {
        molecules += 1
        errors.add(predicted: p.predicted, correct: p.correct)
    }

    /// Molecules that had P property values.
    public var withValues: Int { errors.count }
    /// Mean absolute error per output, or nil if no molecule had values.
    public var mae: [Double]? { errors.mae }
    /// Root-mean-square error per output, or nil if no molecule had values.
    public var rmse: [Double]? { errors.rmse }
}
