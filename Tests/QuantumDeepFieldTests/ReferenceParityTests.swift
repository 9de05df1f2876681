import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// The published pretrained model must predict exactly what the PyTorch implementation
/// predicted for every test molecule.
@Suite("Reference parity")
struct ReferenceParityTests {
    @Test("QM9under14atoms test set: every molecule within 1e-3 eV of the reference, MAE 0.05753 ± 1e-4",
          .enabled(if: Shared.available, Shared.skipMessage))
    func referencePredictions() throws {
        let model = try QDFModel.load(path: Shared.referenceModel)
        let molecules = try readMolecules(Shared.dataset("QM9under14atoms_atomizationenergy_eV/test.txt"))
        #expect(molecules.count == 1480)
        let predictions = try Predictor(model: model).predict(molecules)
        let ref = try readTSV(Shared.path("reference/reference_predictions_QM9under14atoms_test.tsv"))
        #expect(ref.header == ["ID", "Correct", "Predict", "Error"])
        var refByID = [String: Double]()
        for r in ref.rows { refByID[r[0]] = Double(r[2])! }
        var maxDiff = 0.0, absErr = 0.0
        for p in predictions {
            let r = try #require(refByID[p.id], "no reference prediction for \(p.id)")
            maxDiff = max(maxDiff, abs(Double(p.predicted[0]) - r))
            absErr += abs(Double(p.predicted[0]) - p.correct[0])
        }
        let mae = absErr / Double(predictions.count)
        #expect(maxDiff < 1e-3, "largest difference from the reference prediction: \(maxDiff) eV")
        #expect(abs(mae - 0.05753) < 1e-4, "MAE \(mae) eV")
    }
}
