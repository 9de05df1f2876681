import Foundation
import QuantumDeepField

// From the PyTorch implementation's files to a QDF model: a torch.save state_dict and
// a pickled orbital dictionary. Sizes and layer counts come from the tensor shapes
// (QDFModel(file:) infers and validates them); what shapes cannot tell (basis set,
// radius, grid interval, readout) comes from the options, whose defaults are the
// reference implementation's, and is recorded in the model's metadata.

public struct TorchImportOptions: Sendable {
    public var basisSet = TorchImportOptions.reference.basisSet.name
    public var radius = TorchImportOptions.reference.radius
    public var gridInterval = TorchImportOptions.reference.gridInterval
    public var operation: Readout = .sum
    public var dataset: String?
    public var unit: String?
    public var source: String?

    /// The reference implementation's basis set, radius and grid interval: the defaults of
    /// `Hyperparameters`, written there alone.
    public static let reference = Hyperparameters()

    public init(basisSet: String = reference.basisSet.name, radius: Double = reference.radius,
                gridInterval: Double = reference.gridInterval,
                operation: Readout = .sum, dataset: String? = nil, unit: String? = nil, source: String? = nil) {
        self.basisSet = basisSet
        self.radius = radius
        self.gridInterval = gridInterval
        self.operation = operation
        self.dataset = dataset
        self.unit = unit
        self.source = source
    }
}

public enum TorchImport {
    /// Reads a pickled str → int dictionary (the PyTorch implementation's orbital_dict).
    public static func readOrbitalDictionary(path: String) throws -> OrbitalDictionary {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw QDFError("cannot read the orbital dictionary (missing or unreadable)", file: path)
        }
        return try parseOrbitalDictionary([UInt8](data), path: path)
    }

    public static func parseOrbitalDictionary(_ bytes: [UInt8], path: String = "<memory>") throws -> OrbitalDictionary {
        guard bytes.first == 0x80 else { throw QDFError("not a pickle (protocol 2 or later)", file: path) }
        var u = Unpickler(bytes: bytes, path: path)
        let value = try u.load()
        guard u.position == bytes.count else {
            throw QDFError("\(bytes.count - u.position) unexpected bytes after the pickle", file: path)
        }
        guard case .dictionary(let d) = value else {
            throw QDFError("the pickle holds a \(value.kind), not a dict of orbital names to indices", file: path)
        }
        var mapping = [String: Int]()
        for (k, v) in d.entries {
            guard case .string(let name) = k, case .int(let index) = v else {
                throw QDFError("the orbital dictionary must map str to int; found a \(v.kind) value or a non-str key", file: path)
            }
            mapping[name] = index
        }
        do {
            return try OrbitalDictionary(mapping)
        } catch let e as QDFError {
            throw QDFError(e.message, file: path)
        }
    }

    /// The model file contents (docs/model.md §10) for a state_dict and its dictionary.
    public static func safetensors(stateDict: TorchStateDict, dictionary: OrbitalDictionary,
                                   options: TorchImportOptions, sourceName: String) -> SafetensorsFile {
        var tensors = stateDict.tensors
        // A model wrapped in nn.DataParallel saves every key with a "module." prefix.
        if !tensors.isEmpty && tensors.allSatisfy({ $0.name.hasPrefix("module.") }) {
            tensors = tensors.map { (String($0.name.dropFirst("module.".count)), $0.tensor) }
        }
        var md: [String: String] = [
            "basis_set": options.basisSet,
            "radius": formatParameter(options.radius),
            "grid_interval": formatParameter(options.gridInterval),
            "operation": options.operation.rawValue,
            "orbital_dict": dictionary.json,
            "imported_from": "\(sourceName) (torch.save \(stateDict.format.rawValue) format)",
        ]
        if let s = options.dataset { md["dataset"] = s }
        if let s = options.unit { md["unit"] = s }
        if let s = options.source { md["source"] = s }
        return SafetensorsFile(tensors: tensors, metadata: md)
    }

    /// Reads both files and builds the model; every check of QDFModel(file:) applies.
    public static func model(torchFile: String, orbitalDictionary: String,
                             options: TorchImportOptions = TorchImportOptions()) throws -> QDFModel {
        let stateDict = try TorchFile.read(path: torchFile)
        let dictionary = try readOrbitalDictionary(path: orbitalDictionary)
        let file = safetensors(stateDict: stateDict, dictionary: dictionary, options: options,
                               sourceName: (torchFile as NSString).lastPathComponent)
        do {
            return try QDFModel(file: file)
        } catch let e as QDFError {
            throw QDFError(e.message + " (with the orbital dictionary \(orbitalDictionary))", file: torchFile)
        }
    }
}
