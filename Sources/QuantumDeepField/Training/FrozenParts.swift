import Foundation

// Frozen parts of a model in fine-tuning (docs/training.md, "Fine-tuning"): tensors that
// keep their values, take no gradient work in the backward pass and no Adam state.

/// Which parts of a model stay fixed while training (`qdf train --freeze`). The property
/// head (`W_property.*`) is never frozen.
public struct FrozenParts: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Everything that makes ψ: the LCAO coefficients and the exponents ζ (and, when the
    /// model has it, the orbital environment, docs/model.md §18). With the orbitals frozen the
    /// density is fixed, and the HK map, whose only part in the energy is to shape ψ
    /// through Loss_V, is frozen with them: the V pass is skipped.
    public static let orbitals = FrozenParts(rawValue: 1)
    /// The energy functional's layers W_functional.* (with the potential input's weight,
    /// §19): everything between ψ and the readout except the head.
    public static let functional = FrozenParts(rawValue: 2)

    /// The parts by name, in the order `qdf train --freeze` spells them.
    public static let names: [(String, FrozenParts)] = [("orbitals", .orbitals), ("functional", .functional)]

    /// Parses a comma-separated list ("orbitals", "functional", "orbitals,functional"; "none"
    /// or "" for none). Throws `QDFError` naming an unknown part.
    public init(parsing text: String) throws {
        self = []
        for word in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !word.isEmpty && word != "none" {
            guard let part = FrozenParts.names.first(where: { $0.0 == word })?.1 else {
                throw QDFError("unknown part to freeze '\(word)' (expected \(FrozenParts.names.map(\.0).joined(separator: ", ")))")
            }
            insert(part)
        }
    }

    /// "orbitals,functional", or "none".
    public var description: String {
        let parts = FrozenParts.names.filter { contains($0.1) }.map(\.0)
        return parts.isEmpty ? "none" : parts.joined(separator: ",")
    }

    /// Whether the tensor named `name` (docs/model.md §10) belongs to a frozen part.
    public func freezes(tensor name: String) -> Bool {
        if contains(.orbitals), name.hasPrefix("coefficient") || name.hasPrefix("zeta") || name.hasPrefix("environment")
            || name.hasPrefix("W_density") || name.hasPrefix("W_HK") || name.hasPrefix("W_potential") {
            return true
        }
        if contains(.functional), name.hasPrefix("W_functional") { return true }
        return false
    }
}
