// The model's hyperparameters (docs/model.md §9), as stored in a model file's metadata.

/// How the energy functional reduces a molecule's grid rows to one readout vector
/// (docs/model.md §6); the raw value is the `operation` metadata string.
public enum Readout: String, Sendable, CaseIterable {
    /// s = Σ_i h_i, for extensive properties such as energies.
    case sum
    /// s = mean_i h_i, for intensive properties such as HOMO/LUMO.
    case mean
    /// No learned readout: the output is |μ| in debye, the dipole moment of the model's own
    /// density with the nuclei and frozen cores (docs/model.md §20). One output.
    case dipole

    /// The metadata and command-line values, for messages ("sum, mean or dipole").
    public static var names: String {
        allCases.dropLast().map(\.rawValue).joined(separator: ", ") + " or " + allCases.last!.rawValue
    }
}

/// The architecture's hyperparameters (docs/model.md §9; metadata keys in §10). A plain
/// value; call `validate()` before use.
public struct Hyperparameters: Sendable, Equatable {
    /// The basis set (`basis_set`; default 6-31G).
    public var basisSet: BasisSet
    /// Radius r of each atom's grid sphere, in Å (`radius`).
    public var radius: Double
    /// Grid spacing h, in Å (`grid_interval`).
    public var gridInterval: Double
    /// dim, the number of molecular orbitals and the width of the energy functional.
    public var dim: Int
    /// L_f, hidden dim × dim layers of the energy functional (`layer_functional`; ≥ 0).
    public var layerFunctional: Int
    /// H, the width of the Hohenberg–Kohn map (`hidden_HK`).
    public var hiddenHK: Int
    /// L_HK, hidden H × H layers of the HK map (`layer_HK`; ≥ 0).
    public var layerHK: Int
    /// The readout: sum (extensive properties) or mean (intensive) (`operation`).
    public var operation: Readout = .sum
    /// P, the number of predicted properties (`N_output`).
    public var outputs: Int = 1
    /// Where molecules are placed before predicting (`frame`; docs/model.md §17): as given
    /// (the reference) or in their canonical frame.
    public var frame: FrameKind = .input
    /// The orbital environment (docs/model.md §18): coefficient rows that depend on each
    /// atom's neighbourhood; nil (the reference) for none (`environment_*` keys).
    public var environment: EnvironmentShape? = nil
    /// K_v, Gaussians of the external potential at each grid point given to the energy
    /// functional's first layer (docs/model.md §19); 0 (the reference) for none
    /// (`W_functional_potential.weight`).
    public var potentialFeatures: Int = 0

    /// Hyperparameters with the §9 defaults for anything not given (basis 6-31G). Not validated.
    public init(basisSet: BasisSet? = nil, radius: Double = Reference.radius, gridInterval: Double = Reference.gridInterval,
                dim: Int = Reference.dim, layerFunctional: Int = Reference.layerFunctional,
                hiddenHK: Int = Reference.hiddenHK, layerHK: Int = Reference.layerHK,
                operation: Readout = .sum, outputs: Int = 1, frame: FrameKind = .input,
                environment: EnvironmentShape? = nil, potentialFeatures: Int = 0) {
        self.basisSet = basisSet ?? (try! BasisSet(Reference.basisSet))
        self.radius = radius
        self.gridInterval = gridInterval
        self.dim = dim
        self.layerFunctional = layerFunctional
        self.hiddenHK = hiddenHK
        self.layerHK = layerHK
        self.operation = operation
        self.outputs = outputs
        self.frame = frame
        self.environment = environment
        self.potentialFeatures = potentialFeatures
    }

    /// The reference architecture (docs/model.md §9): 6-31G, r 0.75 Å, h 0.3 Å, dim 250,
    /// 3 + 3 layers of width 250, sum readout, one output, input frame.
    public static var reference: Hyperparameters { Hyperparameters() }

    /// The reference architecture's values (docs/model.md §9), written here once: the
    /// defaults of `init`, of a model file without these metadata keys and of `qdf train`'s
    /// options.
    @usableFromInline package enum Reference {
        @usableFromInline package static let basisSet = "6-31G"
        @usableFromInline package static let radius = 0.75
        @usableFromInline package static let gridInterval = 0.3
        @usableFromInline package static let dim = 250
        @usableFromInline package static let layerFunctional = 3
        @usableFromInline package static let hiddenHK = 250
        @usableFromInline package static let layerHK = 3
    }

    /// Throws `QDFError` (no file/line) for a non-positive or non-finite radius or interval,
    /// dim, H or P ≤ 0, a negative layer count, or a radius and interval giving an empty sphere.
    public func validate() throws {
        guard radius > 0, radius.isFinite else { throw QDFError("radius must be positive (got \(radius))") }
        guard gridInterval > 0, gridInterval.isFinite else { throw QDFError("grid interval must be positive (got \(gridInterval))") }
        guard dim > 0, hiddenHK > 0, outputs > 0 else { throw QDFError("dim, hidden_HK and the number of outputs must be positive") }
        guard layerFunctional >= 0, layerHK >= 0 else { throw QDFError("layer counts cannot be negative") }
        guard !GridField.sphere(radius: radius, interval: gridInterval).isEmpty else {
            throw QDFError("radius \(radius) with grid interval \(gridInterval) gives no grid points")
        }
        try environment?.validate()
        guard potentialFeatures == 0 || potentialFeatures >= 2 else {
            throw QDFError("the potential input needs at least two Gaussians (got \(potentialFeatures))")
        }
        guard operation != .dipole || outputs == 1 else {
            throw QDFError("the dipole readout has one output, |μ| (got \(outputs))")
        }
        guard potentialFeatures == 0 || layerFunctional >= 1 else {
            throw QDFError("the potential input enters the first functional layer: it needs layer_functional ≥ 1")
        }
    }
}
