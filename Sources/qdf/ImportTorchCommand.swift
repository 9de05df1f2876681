import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct ImportTorch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-torch",
        abstract: "Convert a model saved by the PyTorch implementation (torch.save state_dict) to a safetensors model.",
        discussion: """
        Reads both torch.save formats (legacy and zip) and the pickled orbital dictionary, \
        without Python. Sizes and layer counts come from the tensor shapes; the options give \
        what shapes cannot tell (the defaults are the reference implementation's) and are \
        recorded in the model's metadata. Only plain data is unpickled: any other pickle \
        global is refused, never executed.
        """)

    @Argument(help: "The PyTorch model file (torch.save of the model's state_dict).")
    var model: String

    @Option(help: "The pickled orbital dictionary (str → int) the model was trained with.")
    var orbitalDict: String

    @Option(name: .shortAndLong, help: "The safetensors model to write.")
    var output: String

    @Option(help: "Basis set the model was trained with.")
    var basisSet = TorchImportOptions.reference.basisSet.name

    @Option(help: "Grid sphere radius (Å).")
    var radius = TorchImportOptions.reference.radius

    @Option(help: "Grid interval (Å).")
    var gridInterval = TorchImportOptions.reference.gridInterval

    @Option(help: "Readout: sum (extensive properties) or mean (intensive ones).")
    var operation = "sum"

    @Option(help: "Dataset name to record in the metadata.")
    var dataset: String?

    @Option(help: "Unit of the predicted property to record (e.g. eV).")
    var unit: String?

    @Option(help: "Source or licence note to record in the metadata.")
    var source: String?

    func validate() throws {
        guard let r = Readout(rawValue: operation), r != .dipole else { throw ValidationError("--operation must be sum or mean") }
    }

    func run() throws {
        try reportingErrors {
            let options = TorchImportOptions(basisSet: basisSet, radius: radius, gridInterval: gridInterval,
                                             operation: Readout(rawValue: operation)!, dataset: dataset,
                                             unit: unit, source: source)
            let m = try TorchImport.model(torchFile: model, orbitalDictionary: orbitalDict, options: options)
            try m.save(path: output)
            let h = m.hyper
            log("\(model) → \(output): \(m.layout.entries.count) tensors, \(m.layout.totalCount) parameters; "
                + "dim \(h.dim), \(h.layerFunctional) functional layers, HK hidden \(h.hiddenHK), \(h.layerHK) HK layers, "
                + "\(h.outputs) output(s); \(m.dictionary.count) orbital types (\(m.dictionary.elements(basis: h.basisSet).joined(separator: " ")))")
        }
    }
}
