// The model's hyperparameters (spec section 9), as stored in a model file's metadata.

public enum Readout: String, Sendable, CaseIterable {
    /// s = Σ_i h_i, for extensive properties such as energies.
    case sum
    /// s = mean_i h_i, for intensive properties such as HOMO/LUMO.
    case mean
}

public struct Hyperparameters: Sendable, Equatable {
    public var basisSet: BasisSet
    public var radius: Double = 0.75
    public var gridInterval: Double = 0.3
    public var dim: Int = 250
    public var layerFunctional: Int = 3
    public var hiddenHK: Int = 250
    public var layerHK: Int = 3
    public var operation: Readout = .sum
    public var outputs: Int = 1

    public init(basisSet: BasisSet? = nil, radius: Double = 0.75, gridInterval: Double = 0.3, dim: Int = 250,
                layerFunctional: Int = 3, hiddenHK: Int = 250, layerHK: Int = 3,
                operation: Readout = .sum, outputs: Int = 1) {
        self.basisSet = basisSet ?? (try! BasisSet("6-31G"))
        self.radius = radius
        self.gridInterval = gridInterval
        self.dim = dim
        self.layerFunctional = layerFunctional
        self.hiddenHK = hiddenHK
        self.layerHK = layerHK
        self.operation = operation
        self.outputs = outputs
    }

    public func validate() throws {
        guard radius > 0, radius.isFinite else { throw QDFError("radius must be positive (got \(radius))") }
        guard gridInterval > 0, gridInterval.isFinite else { throw QDFError("grid interval must be positive (got \(gridInterval))") }
        guard dim > 0, hiddenHK > 0, outputs > 0 else { throw QDFError("dim, hidden_HK and the number of outputs must be positive") }
        guard layerFunctional >= 0, layerHK >= 0 else { throw QDFError("layer counts cannot be negative") }
        guard !GridField.sphere(radius: radius, interval: gridInterval).isEmpty else {
            throw QDFError("radius \(radius) with grid interval \(gridInterval) gives no grid points")
        }
    }
}
