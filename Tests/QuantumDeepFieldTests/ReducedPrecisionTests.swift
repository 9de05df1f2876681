import Foundation
import Testing
import QuantumDeepField
import QDFFormats

/// Opt-in bfloat16 GEMMs (`--precision bf16`, `BF16Compute`).
@Suite("Reduced precision (bf16)")
struct ReducedPrecisionTests {
    /// A library with bf16 GEMMs (oneMKL, installed by `scripts/setup --blas`), or nil.
    static let compute: BF16Compute? = try? BF16Compute.available()
    static let skipMessage: Comment = "no GEMM library with bfloat16 GEMMs loads (oneMKL: scripts/setup --blas): skipped"

    @Test("Rounding to bfloat16: nearest, ties to even, NaN and infinities kept, against an independent computation")
    func rounding() {
        func bits(_ x: Float) -> UInt16 { BF16Compute.bf16Bits(x) }
        #expect(bits(1) == 0x3F80 && bits(-2) == 0xC000 && bits(0) == 0 && bits(-0.0) == 0x8000)
        #expect(bits(1 + 0x1p-8) == 0x3F80, "halfway, to the even neighbour below")
        #expect(bits(1 + 3 * 0x1p-8) == 0x3F82, "halfway, to the even neighbour above")
        #expect(bits(1 + 0x1p-8 + 0x1p-20) == 0x3F81, "just above halfway rounds up")
        #expect(bits(.infinity) == 0x7F80 && bits(-.infinity) == 0xFF80)
        #expect(bits(.greatestFiniteMagnitude) == 0x7F80, "beyond bf16's largest finite value: +∞")
        #expect(BF16Compute.float(bf16: bits(.nan)).isNaN)
        // Independent: the nearest of the two bf16 neighbours, computed in Double.
        var rng = RandomGenerator(seed: 7)
        for _ in 0..<20_000 {
            let x = Float(rng.nextUniform(-1, 1)) * Float(pow(2.0, Double(Int(rng.nextUniform(-60, 60)))))
            let down = Float(bitPattern: x.bitPattern & 0xFFFF_0000)  // toward zero
            let up = Float(bitPattern: (x.bitPattern & 0xFFFF_0000) &+ 0x1_0000)  // away from zero
            let dDown = abs(Double(x) - Double(down)), dUp = abs(Double(x) - Double(up))
            let want: Float = dDown < dUp ? down : dUp < dDown ? up : ((down.bitPattern >> 16) & 1 == 0 ? down : up)
            #expect(BF16Compute.float(bf16: bits(x)) == want, "\(x)")
        }
    }

    @Test("A bf16 GEMM is the Float32 GEMM of the rounded operands, in all four transposes and with β",
          .enabled(if: compute != nil, skipMessage))
    func gemmOfRoundedOperands() throws {
        let bf16 = try #require(Self.compute)
        var rng = RandomGenerator(seed: 5)
        let (m, n, k) = (33, 27, 61)
        let a = (0..<(m * k)).map { _ in Float(rng.nextUniform(-1, 1)) }, b = (0..<(k * n)).map { _ in Float(rng.nextUniform(-1, 1)) }
        let c0 = (0..<(m * n)).map { _ in Float(rng.nextUniform(-1, 1)) }
        let ar = a.map { BF16Compute.float(bf16: BF16Compute.bf16Bits($0)) }, br = b.map { BF16Compute.float(bf16: BF16Compute.bf16Bits($0)) }
        var worstRaw: Float = 0
        for ta in [Transpose.none, .transpose] {
            for tb in [Transpose.none, .transpose] {
                for beta: Float in [0, 1, 0.5] {
                    let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
                    var want = c0, got = c0, raw = c0
                    BLAS.portableSgemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: ar, lda: lda, b: br, ldb: ldb, beta: beta, c: &want, ldc: n)
                    BLAS.portableSgemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &raw, ldc: n)
                    bf16.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &got, ldc: n)
                    let worst = zip(want, got).map { abs($0 - $1) }.max()!
                    #expect(worst < 2e-5, "\(ta) \(tb) β \(beta): \(worst) from the GEMM of the rounded operands")
                    worstRaw = max(worstRaw, zip(raw, got).map { abs($0 - $1) }.max()!)
                }
            }
        }
        // The rounding itself is visible (the test would pass trivially if nothing were rounded).
        #expect(worstRaw > 1e-4, "bf16 GEMM equals the Float32 one: \(worstRaw)")
    }

    @Test("The reference model in bf16: QM9under14atoms test MAE within 0.002 eV of Float32's",
          .enabled(if: Shared.available && compute != nil, "needs ../shared and a library with bf16 GEMMs"))
    func referenceMAE() throws {
        let bf16 = try #require(Self.compute)
        let model = try QDFModel.load(path: Shared.referenceModel)
        let molecules = try readMolecules(Shared.dataset("QM9under14atoms_atomizationenergy_eV/test.txt"))
        let f32 = try Predictor(model: model).predict(molecules)
        let b16 = try Predictor(model: model, compute: defaultCompute, layerCompute: bf16).predict(molecules)
        func mae(_ p: [Prediction]) -> Double { p.map { abs(Double($0.predicted[0]) - $0.correct[0]) }.reduce(0, +) / Double(p.count) }
        let diffs = zip(f32, b16).map { abs(Double($0.predicted[0]) - Double($1.predicted[0])) }
        print(String(format: "bf16: MAE %.5f eV against Float32's %.5f; per molecule |Δ| mean %.4f, max %.4f eV",
                     mae(b16), mae(f32), diffs.reduce(0, +) / Double(diffs.count), diffs.max()!))
        #expect(abs(mae(b16) - mae(f32)) <= 0.002, "MAE \(mae(b16)) against \(mae(f32))")
        #expect(diffs.max()! > 0, "bf16 changed no prediction")
    }

    @Test("qdf predict --precision bf16 predicts, and says what it uses",
          .enabled(if: InterruptionTests.available && compute != nil, "needs the qdf executable and a library with bf16 GEMMs"))
    func command() throws {
        let dir = try TemporaryDirectory()
        let input = try dir.write("m.xyz", "3\nwater\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n")
        let r = try runProcess(InterruptionTests.qdf, ["predict", input, "--precision", "bf16", "-o", dir.file("p.tsv")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("--precision bf16: the energy functional's upper layers in bf16 GEMMs through"), "\(r.stderr)")
        let bad = try runProcess(InterruptionTests.qdf, ["predict", input, "--precision", "half"])
        #expect(bad.status != 0 && bad.stderr.contains("precision"), "\(bad.stderr)")
    }
}
