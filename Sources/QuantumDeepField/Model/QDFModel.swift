import Foundation

// A QDF model: its architecture (hyperparameters, orbital dictionary, parameter layout,
// grid sphere) and its learned parameters, as an immutable-by-default value.

/// Everything about a model except its learned values: what an engine needs to lay out
/// its buffers and what a molecule's geometry depends on. An immutable value; `Sendable`,
/// safe to share between threads.
public struct ModelArchitecture: Sendable, Equatable {
    /// The hyperparameters (validated).
    public let hyper: Hyperparameters
    /// Orbital name → row of `coefficient.weight` and `zeta.weight`.
    public let dictionary: OrbitalDictionary
    /// Names, shapes and offsets of the tensors in the flat parameter array.
    public let layout: ParameterLayout
    /// The layout's offsets, resolved once for the hot loops.
    package let offsets: ParameterOffsets
    /// The grid sphere S (ångström offsets) for the model's radius and interval (docs/model.md §2).
    public let sphere: [SIMD3<Double>]

    /// The architecture of `hyper` over `dictionary`'s N_t orbital types. Throws `QDFError`
    /// (no file/line) if `hyper.validate()` fails or the dictionary is empty.
    /// A per-element reference added to every prediction (docs/training.md), or nil.
    public let elementBaseline: ElementBaseline?

    public init(hyper: Hyperparameters, dictionary: OrbitalDictionary, elementBaseline: ElementBaseline? = nil) throws {
        try hyper.validate()
        if let b = elementBaseline, b.outputs != hyper.outputs {
            throw QDFError("the element baseline has \(b.outputs) outputs, the model \(hyper.outputs)")
        }
        self.elementBaseline = elementBaseline
        guard dictionary.count > 0 else { throw QDFError("the orbital dictionary is empty") }
        self.hyper = hyper
        self.dictionary = dictionary
        layout = ParameterLayout(orbitalTypes: dictionary.count, hyper: hyper)
        offsets = ParameterOffsets(layout, hyper)
        sphere = GridField.sphere(radius: hyper.radius, interval: hyper.gridInterval)
    }

    /// The basis set (`hyper.basisSet`).
    public var basis: BasisSet { hyper.basisSet }

    /// The geometry of a molecule for this model (with V on the field if `withPotential`),
    /// placed as the model places it (`placed`). Throws `QDFError` (no file/line) naming
    /// elements outside the dictionary.
    public func geometry(_ m: Molecule, withPotential: Bool = false) throws -> MoleculeGeometry {
        try placedGeometry(placed(m), withPotential: withPotential)
    }

    /// The geometry of a molecule exactly where its positions put it (no frame applied).
    /// A model with the potential input (§19) always has V on the field.
    package func placedGeometry(_ m: Molecule, withPotential: Bool = false) throws -> MoleculeGeometry {
        var g = try MoleculeGeometry(molecule: m, sphere: sphere, basis: hyper.basisSet, dictionary: dictionary,
                                     withPotential: withPotential || hyper.potentialFeatures > 0,
                                     outputOffset: elementBaseline?.offset(m).map(Float.init) ?? [])
        if hyper.operation == .dipole { g.dipoleFrame = DipoleReadout.Frame(molecule: m, sphere: sphere) }
        return g
    }

    /// The frames this model predicts a molecule in: its canonical frames
    /// (`MoleculeFrame.frames(of:)`) for a canonical-frame model, the identity otherwise.
    public func frames(of m: Molecule) -> [MoleculeFrame] {
        hyper.frame == .canonical ? MoleculeFrame.frames(of: m) : [.identity]
    }

    /// The molecule as the model places it: in its first canonical frame for a
    /// canonical-frame model, unchanged otherwise (training, the readout refit and the
    /// density use this frame; prediction may average over all of `frames(of:)`).
    public func placed(_ m: Molecule) -> Molecule {
        hyper.frame == .canonical ? MoleculeFrame.canonical(m).place(m) : m
    }

    /// Equal hyperparameters and dictionaries (everything else derives from them).
    public static func == (a: ModelArchitecture, b: ModelArchitecture) -> Bool {
        a.hyper == b.hyper && a.dictionary == b.dictionary && a.elementBaseline == b.elementBaseline
    }
}

/// A QDF model: architecture, learned parameters and metadata.
///
/// A value: a predictor or a density field keeps its own copy, which nothing else can
/// change; the trainer owns the copy it updates (copy-on-write: no copy is made unless
/// both are changed). `Sendable`: copies may be used from any thread.
public struct QDFModel: Sendable {
    /// Hyperparameters, dictionary, layout and grid sphere.
    public let architecture: ModelArchitecture
    /// All parameters, contiguous, in `layout` order (docs/model.md §10).
    public var parameters: [Float]
    /// Extra metadata kept with the model (dataset, unit, source, training details...).
    public var metadata: [String: String]

    /// `architecture.hyper`.
    public var hyper: Hyperparameters { architecture.hyper }
    /// `architecture.dictionary`: orbital name → row of `coefficient` and `zeta`.
    public var dictionary: OrbitalDictionary { architecture.dictionary }
    /// `architecture.layout`: where each tensor lives in `parameters`.
    public var layout: ParameterLayout { architecture.layout }
    /// `architecture.offsets`.
    package var offsets: ParameterOffsets { architecture.offsets }
    /// `architecture.sphere`: the grid offsets S in Å (docs/model.md §2).
    public var sphere: [SIMD3<Double>] { architecture.sphere }
    /// `architecture.basis`.
    public var basis: BasisSet { architecture.basis }

    /// A model with the given parameters (`layout.totalCount` values), or freshly
    /// initialized ones (docs/model.md §9) from `seed`. Throws `QDFError` (no file/line) if
    /// the architecture is invalid or the parameter count does not match the layout.
    public init(hyper: Hyperparameters, dictionary: OrbitalDictionary, parameters: [Float]? = nil,
                metadata: [String: String] = [:], seed: UInt64 = 1729) throws {
        let baseline = try metadata["element_baseline"].map { try ElementBaseline(json: $0, outputs: hyper.outputs) }
        architecture = try ModelArchitecture(hyper: hyper, dictionary: dictionary, elementBaseline: baseline)
        self.metadata = metadata
        if let p = parameters {
            guard p.count == architecture.layout.totalCount else {
                throw QDFError("parameter count \(p.count) does not match the model's \(architecture.layout.totalCount)")
            }
            self.parameters = p
        } else {
            self.parameters = [Float](repeating: 0, count: architecture.layout.totalCount)
            initialize(seed: seed)
        }
    }

    /// docs/model.md §9: linear layers uniform in ±1/sqrt(fan_in), coefficients standard
    /// normal, every ζ = 1 (the orbital environment, §18: embedding standard normal, gate 1,
    /// output 0; the potential input's weight 0, §19); one xoshiro256** stream seeded with `seed`, in layout order.
    /// Overwrites every parameter.
    public mutating func initialize(seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for e in layout.entries {
            switch e.name {
            case "coefficient.weight":
                for i in e.range { parameters[i] = Float(rng.nextNormal()) }
            case "zeta.weight":
                for i in e.range { parameters[i] = 1 }
            case "environment.embedding.weight":
                for i in e.range { parameters[i] = Float(rng.nextNormal()) }
            case "environment.gate.weight":
                for i in e.range { parameters[i] = 1 }
            case "environment.output.weight", "W_functional_potential.weight":
                // Zero: a new model starts as the reference architecture (§18, §19).
                for i in e.range { parameters[i] = 0 }
            default:
                // Weights [out, in] and biases [out] of a linear layer: fan_in is the weight's
                // second dimension.
                let weightName = e.name.hasSuffix(".bias") ? String(e.name.dropLast(5)) + ".weight" : e.name
                let fanIn = layout[weightName]!.shape[1]
                let bound = 1 / Double(fanIn).squareRoot()
                for i in e.range { parameters[i] = Float(rng.nextUniform(-bound, bound)) }
            }
        }
    }

    /// A copy of one tensor's values (row-major), by its model-file name; traps on an
    /// unknown name.
    public func tensor(_ name: String) -> [Float] {
        let e = layout[name]!
        return Array(parameters[e.range])
    }

    /// Replaces the property readout: W_property (P × dim, row-major) and its bias (P).
    /// Traps (precondition) on other sizes.
    public mutating func setReadout(weight: [Float], bias: [Float]) {
        precondition(weight.count == hyper.outputs * hyper.dim && bias.count == hyper.outputs, "readout shape")
        for (k, v) in weight.enumerated() { parameters[offsets.propertyWeight + k] = v }
        for (k, v) in bias.enumerated() { parameters[offsets.propertyBias + k] = v }
    }

    /// The same model (parameters, metadata) placing molecules in `frame`: e.g. a model
    /// trained in the input frame run in the canonical one (`qdf predict --frame canonical`).
    public func placing(in frame: FrameKind) -> QDFModel {
        guard frame != hyper.frame else { return self }
        var h = hyper
        h.frame = frame
        return try! QDFModel(hyper: h, dictionary: dictionary, parameters: parameters, metadata: metadata)
    }

    /// The geometry of a molecule for this model (`ModelArchitecture.geometry`). Throws
    /// `QDFError` (no file/line) naming elements outside the dictionary.
    public func geometry(_ m: Molecule, withPotential: Bool = false) throws -> MoleculeGeometry {
        try architecture.geometry(m, withPotential: withPotential)
    }

    // MARK: - Model file

    /// The metadata `save` writes: `metadata` with the architecture keys of docs/model.md §10
    /// (the reference's, plus N_output) set from the hyperparameters and dictionary.
    public var fileMetadata: [String: String] {
        var md = metadata
        md["basis_set"] = hyper.basisSet.name
        md["radius"] = formatParameter(hyper.radius)
        md["grid_interval"] = formatParameter(hyper.gridInterval)
        md["dim"] = String(hyper.dim)
        md["layer_functional"] = String(hyper.layerFunctional)
        md["hidden_HK"] = String(hyper.hiddenHK)
        md["layer_HK"] = String(hyper.layerHK)
        md["operation"] = hyper.operation.rawValue
        md["N_output"] = String(hyper.outputs)
        md["orbital_dict"] = dictionary.json
        md["frame"] = hyper.frame.rawValue
        if let e = hyper.environment {
            md["environment_layers"] = String(e.layers)
            md["environment_features"] = String(e.features)
            md["environment_gaussians"] = String(e.gaussians)
            md["environment_cutoff"] = formatParameter(e.cutoff)
        }
        return md
    }

    /// Writes the model as F32 safetensors (atomically), tensors in layout order (§10).
    /// Throws `QDFError` (file: `path`) on an I/O failure.
    public func save(path: String) throws {
        let tensors = layout.entries.map { e in
            (name: e.name, tensor: Tensor(shape: e.shape, values: Array(parameters[e.range])))
        }
        try SafetensorsFile(tensors: tensors, metadata: fileMetadata).write(path: path)
    }

    /// Reads a model file (safetensors). Throws `QDFError` with file: `path` (no line) if the
    /// file is unreadable or invalid, or `init(file:)` refuses it.
    public static func load(path: String) throws -> QDFModel {
        let file = try SafetensorsFile.read(path: path)
        do {
            return try QDFModel(file: file)
        } catch let e as QDFError {
            throw QDFError(e.message, file: path)
        }
    }

    /// Builds a model from safetensors contents. Layer counts and sizes come from the
    /// tensor shapes; what shapes cannot tell (basis, radius, interval, operation) from
    /// the metadata, with the reference defaults where absent (docs/model.md §10). Throws
    /// `QDFError` (no file) for a missing or bad `orbital_dict`, a missing, misshapen or
    /// unexpected tensor, or a size key disagreeing with the tensors.
    public init(file: SafetensorsFile) throws {
        let md = file.metadata
        guard let dictJSON = md["orbital_dict"] else {
            throw QDFError("the model has no orbital dictionary (metadata 'orbital_dict')")
        }
        let dict = try OrbitalDictionary(json: dictJSON)
        guard let coef = file["coefficient.weight"], coef.shape.count == 2 else {
            throw QDFError("the model has no 2-D tensor 'coefficient.weight'")
        }
        guard coef.shape[0] == dict.count else {
            throw QDFError("coefficient.weight has \(coef.shape[0]) rows but the orbital dictionary has \(dict.count) entries")
        }
        var layerF = 0
        while file["W_functional.\(layerF).weight"] != nil { layerF += 1 }
        var layerHK = 0
        while file["W_HK.\(layerHK).weight"] != nil { layerHK += 1 }
        guard let wp = file["W_property.weight"], wp.shape.count == 2 else {
            throw QDFError("the model has no 2-D tensor 'W_property.weight'")
        }
        guard let wd = file["W_density.weight"], wd.shape.count == 2 else {
            throw QDFError("the model has no 2-D tensor 'W_density.weight'")
        }
        func number(_ key: String, _ def: Double) throws -> Double {
            guard let s = md[key] else { return def }
            guard let v = Double(s) else { throw QDFError("metadata '\(key)' is not a number: '\(s)'") }
            return v
        }
        let op = md["operation"] ?? "sum"
        guard let readout = Readout(rawValue: op) else { throw QDFError("metadata 'operation' must be \(Readout.names), not '\(op)'") }
        let frameName = md["frame"] ?? "input"
        guard let frame = FrameKind(rawValue: frameName) else {
            throw QDFError("metadata 'frame' must be input or canonical, not '\(frameName)'")
        }
        // The orbital environment (§18): layers and sizes from its tensors, the cutoff from
        // the metadata.
        var environment: EnvironmentShape? = nil
        if let emb = file["environment.embedding.weight"] {
            var layers = 0
            while file["environment.\(layers).input.weight"] != nil { layers += 1 }
            guard emb.shape.count == 2, let f0 = file["environment.0.filter.0.weight"], f0.shape.count == 2 else {
                throw QDFError("the model's orbital environment lacks 'environment.0.filter.0.weight' or has misshapen tensors")
            }
            guard let cutoff = md["environment_cutoff"].flatMap(Double.init) else {
                throw QDFError("the model has orbital-environment tensors but no number in metadata 'environment_cutoff'")
            }
            environment = EnvironmentShape(layers: layers, features: emb.shape[1], gaussians: f0.shape[1], cutoff: cutoff)
            for (key, value) in [("environment_layers", layers), ("environment_features", emb.shape[1]),
                                 ("environment_gaussians", f0.shape[1])] {
                if let s = md[key], Int(s) != value {
                    throw QDFError("metadata says \(key) = \(s) but the tensors give \(value)")
                }
            }
        }
        let h = Hyperparameters(
            basisSet: try BasisSet(md["basis_set"] ?? Hyperparameters.Reference.basisSet),
            radius: try number("radius", Hyperparameters.Reference.radius),
            gridInterval: try number("grid_interval", Hyperparameters.Reference.gridInterval),
            dim: coef.shape[1], layerFunctional: layerF, hiddenHK: wd.shape[0], layerHK: layerHK,
            operation: readout, outputs: wp.shape[0], frame: frame, environment: environment,
            potentialFeatures: file["W_functional_potential.weight"].map { $0.shape.count == 2 ? $0.shape[1] : -1 } ?? 0)
        for (key, value) in [("dim", h.dim), ("layer_functional", layerF), ("hidden_HK", h.hiddenHK), ("layer_HK", layerHK), ("N_output", h.outputs)] {
            if let s = md[key], Int(s) != value {
                throw QDFError("metadata says \(key) = \(s) but the tensors give \(value)")
            }
        }
        let layout = ParameterLayout(orbitalTypes: dict.count, hyper: h)
        var params = [Float](repeating: 0, count: layout.totalCount)
        for e in layout.entries {
            guard let t = file[e.name] else { throw QDFError("the model lacks tensor '\(e.name)'") }
            guard t.shape == e.shape else {
                throw QDFError("tensor '\(e.name)' has shape \(t.shape), expected \(e.shape)")
            }
            params.replaceSubrange(e.range, with: t.values)
        }
        let known = Set(layout.entries.map(\.name))
        if let extra = file.tensors.first(where: { !known.contains($0.name) }) {
            throw QDFError("the model has an unexpected tensor '\(extra.name)'")
        }
        var extraMeta = md
        for k in ["basis_set", "radius", "grid_interval", "dim", "layer_functional", "hidden_HK", "layer_HK",
                  "operation", "N_output", "orbital_dict", "frame", "environment_layers", "environment_features",
                  "environment_gaussians", "environment_cutoff"] { extraMeta[k] = nil }
        try self.init(hyper: h, dictionary: dict, parameters: params, metadata: extraMeta)
    }
}

/// "0.75", "0.3", "1.0" as Python's str(float) writes them.
package func formatParameter(_ x: Double) -> String {
    if x == x.rounded() && abs(x) < 1e15 { return String(format: "%.1f", x) }
    return "\(x)"
}
