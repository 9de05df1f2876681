// The training recipes as values (docs/training.md): the reference (the published recipe)
// and fast (the bundled models': v2's, and v3's with the orbital environment added).
// `qdf train --recipe` starts from one of them and applies the options given explicitly.

/// A named starting point for `TrainingOptions`.
public enum TrainingRecipe: String, Sendable, CaseIterable {
    /// The published recipe: StepLR from lr 1e-4, every epoch evaluated (`TrainingOptions.reference`).
    case reference
    /// The bundled models' recipe (`TrainingOptions.fast`; v3 adds `--environment-layers 3`; docs/training.md, docs/model-card.md).
    case fast

    /// The options of this recipe.
    public var options: TrainingOptions {
        switch self {
        case .reference: return .reference
        case .fast: return .fast
        }
    }
}

extension TrainingOptions {
    /// The published recipe (docs/model.md §9): the reference architecture, StepLR from
    /// lr 1e-4 (× 0.5 every 200 epochs), 2000 epochs, batch 4, MSE, every epoch evaluated,
    /// no warm-up, time budget, EMA or element baseline.
    public static var reference: TrainingOptions { TrainingOptions() }

    /// The bundled models' recipe (docs/training.md; v3 adds the orbital environment): the reference architecture in the
    /// canonical frame, lr 3e-4 with 1 warm-up epoch and a cosine decay to 1e-5 over a
    /// 2.5 h time budget (wall clock), an EMA of the parameters (decay 0.9995), per-element
    /// reference values, evaluation every 5 epochs.
    public static var fast: TrainingOptions {
        var o = TrainingOptions()
        o.hyper.frame = .canonical
        o.learningRate = 3e-4
        o.schedule = .cosine
        o.warmupEpochs = 1
        o.lrMin = 1e-5
        o.timeBudget = 2.5 * 3600
        o.ema = 0.9995
        o.evalEvery = 5
        o.elementBaseline = true
        return o
    }
}
