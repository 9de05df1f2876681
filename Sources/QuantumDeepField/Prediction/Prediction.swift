import Foundation

// What a prediction produces: one `Prediction` per molecule, the `PredictionSummary` of a
// run, and `ErrorSums`, the one place where errors against known values are summed
// (MAE, RMSE and largest error per output, and the MAE over molecules × outputs the
// trainer records).

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

/// Sums of the errors of predictions against known values, per output, for one group of
/// molecules: the one accumulator behind `qdf predict`'s summary, the learning curve's
/// MAE, the readout refit's MAE and the reports' tables.
public struct ErrorSums: Sendable, Equatable {
    /// Molecules added (the denominator of `mae` and `rmse`).
    public private(set) var count = 0
    /// Σ |E − Ê| per output.
    public private(set) var absolute: [Double]
    /// Σ (E − Ê)² per output.
    public private(set) var squared: [Double]
    /// The largest |E − Ê| per output.
    public private(set) var maximum: [Double]
    /// Σ |E − Ê| over molecules and outputs, summed molecule by molecule (`overallMAE`).
    public private(set) var absoluteOverAll = 0.0

    /// Empty sums for a model with `outputs` outputs.
    public init(outputs: Int) {
        absolute = [Double](repeating: 0, count: outputs)
        squared = absolute
        maximum = absolute
    }

    /// P, the number of outputs.
    public var outputs: Int { absolute.count }

    /// Adds one molecule's signed errors (predicted − correct), one per output.
    public mutating func add(_ errors: [Double]) {
        precondition(errors.count == absolute.count, "one error per output")
        count += 1
        for q in 0..<errors.count {
            let e = errors[q]
            absolute[q] += abs(e)
            squared[q] += e * e
            maximum[q] = max(maximum[q], abs(e))
            absoluteOverAll += abs(e)
        }
    }

    /// Adds one molecule's prediction; ignored unless `correct` has one value per output.
    public mutating func add(predicted: [Float], correct: [Double]) {
        guard correct.count == absolute.count else { return }
        add(zip(predicted, correct).map { Double($0) - $1 })
    }

    /// Adds the sums of other molecules (those of another share of the same set).
    public mutating func add(_ other: ErrorSums) {
        precondition(other.absolute.count == absolute.count, "error sums of the same outputs")
        count += other.count
        for q in 0..<absolute.count {
            absolute[q] += other.absolute[q]
            squared[q] += other.squared[q]
            maximum[q] = max(maximum[q], other.maximum[q])
        }
        absoluteOverAll += other.absoluteOverAll
    }

    /// Mean absolute error per output (property unit, e.g. eV); NaN when no molecule was added.
    public var mae: [Double] { absolute.map { count > 0 ? $0 / Double(count) : .nan } }
    /// Root-mean-square error per output (property unit); NaN when no molecule was added.
    public var rmse: [Double] { squared.map { count > 0 ? ($0 / Double(count)).squareRoot() : .nan } }
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
    public var mae: [Double]? { errors.count > 0 ? errors.mae : nil }
    /// Root-mean-square error per output, or nil if no molecule had values.
    public var rmse: [Double]? { errors.count > 0 ? errors.rmse : nil }
}
