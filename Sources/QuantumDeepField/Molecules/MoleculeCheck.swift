#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Chemistry checks before predicting: questions the model cannot answer are refused
// instead of answered confidently.
//
// The model learned neutral, closed-shell molecules with sensible geometries in Å (QM9).
// A molecule is suspicious when
//   - it has an element outside the model (the atom is named);
//   - its file records a charge (a net charge, or formal charges such as a zwitterion's);
//   - it is open-shell: an odd number of electrons (Σ Z − charge), or a carbon atom with
//     too few neighbours for its geometry (two neighbours at an angle below 150°, or one
//     neighbour other than a triply bonded N or O): the signs of hydrogens left out, which
//     keep the electron count even when removed in pairs. (A pyramidal three-neighbour
//     carbon is not flagged: 21 of QM9's strained molecules have one.)
//   - its geometry is implausible: two atoms closer than `minimumDistance` (0.5 Å), bond
//     lengths that look like bohr (the median distance from a hydrogen to its nearest
//     atom above 1.5 Å, or, without hydrogens, first-row atoms whose median nearest-
//     neighbour distance is above 1.9 Å: both ≈ 1.89× the Å values), or an atom with no
//     other atom within `neighbourCutoff` (3 Å: a fragment, missing atoms, or a typo).
// Bonds for the carbon test: d < r_a + r_b + 0.45 Å with covalent radii (Cordero et al.,
// Dalton Trans. 2008; the tolerance Open Babel uses).

/// One reason to distrust a prediction for a molecule.
public struct MoleculeIssue: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of issues; each can be overridden on its own.
    public enum Kind: String, Sendable, CaseIterable {
        /// An element the model has no learned orbitals for.
        case unknownElement = "element"
        /// A recorded net charge or formal charges.
        case charged = "charged"
        /// An odd electron count or an under-coordinated carbon (radical, carbene).
        case openShell = "open-shell"
        /// Two atoms closer than the minimum distance.
        case atomsTooClose = "too-close"
        /// Bond lengths that look like bohr, not Å.
        case bohrUnits = "bohr"
        /// An atom with no neighbour within the cutoff.
        case isolatedAtom = "isolated"
    }
    /// What is wrong.
    public var kind: Kind
    /// The explanation, naming atoms by 1-based index and element.
    public var message: String
    /// The 0-based index of the atom concerned (so readers can name its line), or nil.
    public var atom: Int?

    /// An issue of `kind` about `atom` (0-based), explained by `message`.
    public init(_ kind: Kind, _ message: String, atom: Int? = nil) {
        self.kind = kind
        self.message = message
        self.atom = atom
    }
    /// The message.
    public var description: String { message }
    /// Whether the issue concerns the geometry (too close, bohr, isolated).
    public var isGeometry: Bool { [.atomsTooClose, .bohrUnits, .isolatedAtom].contains(kind) }
}

/// The chemistry checks (see the comment at the top of this file). A value; `issues(_:)`
/// is pure and thread-safe.
public struct MoleculeCheck: Sendable {
    /// Atomic numbers the model knows; nil accepts every element.
    public var knownElements: Set<Int>?
    /// Atoms closer than this (Å) are an issue.
    public var minimumDistance = 0.5
    /// An atom with no other atom within this distance (Å) is an issue.
    public var neighbourCutoff = 3.0

    /// Checks with the given known elements (nil: any element).
    public init(knownElements: Set<Int>? = nil) { self.knownElements = knownElements }

    /// Checks for a model: its known elements are those whose orbitals are all in its dictionary.
    public init(model: QDFModel) {
        knownElements = Set(model.dictionary.elements(basis: model.basis).compactMap { Element.atomicNumber($0) })
    }

    /// The issues of `m`, in a fixed order: elements, charge, odd electron count, geometry,
    /// under-coordinated carbon (looked for only when the geometry is plausible).
    public func issues(_ m: Molecule) -> [MoleculeIssue] {
        var out = [MoleculeIssue]()
        let n = m.atomCount
        func atomName(_ i: Int) -> String { "atom \(i + 1) (\(Element.symbol(m.atomicNumbers[i])))" }

        if let known = knownElements {
            var reported = Set<Int>()
            for (i, z) in m.atomicNumbers.enumerated() where !known.contains(z) && !reported.contains(z) {
                reported.insert(z)
                let knows = known.sorted().map(Element.symbol).joined(separator: ", ")
                out.append(MoleculeIssue(.unknownElement,
                    "\(atomName(i)): the model has no learned orbitals for \(Element.symbol(z)) (it knows \(knows))", atom: i))
            }
        }

        let charge = m.charge ?? 0
        let charged = m.formalCharges.enumerated().filter { $0.element != 0 }
        if charge != 0 || !charged.isEmpty {
            var text = charge != 0 ? "the file records a net charge of \(signed(charge))" : "the file records formal charges (net charge 0: a zwitterion)"
            if !charged.isEmpty {
                let list = charged.prefix(6).map { "\(signed($0.element)) on \(atomName($0.offset))" }
                text += ": " + list.joined(separator: ", ") + (charged.count > 6 ? ", …" : "")
            }
            out.append(MoleculeIssue(.charged, text + "; the model learned neutral molecules", atom: charged.first?.offset))
        }

        let electrons = m.electronCount - charge
        if electrons % 2 != 0 {
            out.append(MoleculeIssue(.openShell,
                "\(electrons) electrons, an odd number: a radical (hydrogens missing?); the model learned closed-shell molecules"))
        }

        guard n > 1 else { return out }
        let neighbours = neighbourLists(m.positions, cutoff: neighbourCutoff)

        // Geometry.
        var closest: (Int, Int, Double)? = nil
        for i in 0..<n {
            for nb in neighbours[i] where nb.index > i && nb.distance < minimumDistance {
                if closest == nil || nb.distance < closest!.2 { closest = (i, nb.index, nb.distance) }
            }
        }
        if let (a, b, d) = closest {
            out.append(MoleculeIssue(.atomsTooClose,
                "\(atomName(a)) and \(atomName(b)) are \(format(d)) Å apart (less than \(format(minimumDistance)) Å)", atom: b))
        }
        let nearest = neighbours.map { $0.map(\.distance).min() ?? .infinity }
        let hydrogenNearest = (0..<n).filter { m.atomicNumbers[$0] == 1 && nearest[$0].isFinite }.map { nearest[$0] }
        var looksBohr = false
        if !hydrogenNearest.isEmpty {
            let med = median(hydrogenNearest)
            if med > 1.5 {
                looksBohr = true
                out.append(MoleculeIssue(.bohrUnits,
                    "bond lengths look like bohr, not Å: the median distance from a hydrogen to its nearest atom is \(format(med)) Å (in bohr it would be \(format(med * angstromPerBohr)) Å)"))
            }
        } else if m.atomicNumbers.allSatisfy({ $0 <= 10 }) {
            let finite = nearest.filter(\.isFinite)
            if !finite.isEmpty, median(finite) > 1.9 {
                looksBohr = true
                let med = median(finite)
                out.append(MoleculeIssue(.bohrUnits,
                    "bond lengths look like bohr, not Å: the median nearest-neighbour distance is \(format(med)) Å (in bohr it would be \(format(med * angstromPerBohr)) Å)"))
            }
        }
        if !looksBohr, let i = nearest.firstIndex(where: { !$0.isFinite }) {
            let count = nearest.filter { !$0.isFinite }.count
            out.append(MoleculeIssue(.isolatedAtom,
                "\(atomName(i)) has no other atom within \(format(neighbourCutoff)) Å" + (count > 1 ? " (and \(count - 1) more atoms)" : "")
                + ": a fragment, missing atoms, or a wrong coordinate", atom: i))
        }
        // Under-coordinated carbons (when the electron count did not already say open shell).
        if electrons % 2 == 0 && !out.contains(where: \.isGeometry) {
            for i in 0..<n where m.atomicNumbers[i] == 6 {
                let bonded = neighbours[i].filter { isBond(m.atomicNumbers[i], m.atomicNumbers[$0.index], $0.distance) }
                var reason: String? = nil
                switch bonded.count {
                case 1:
                    let j = bonded[0]
                    let z = m.atomicNumbers[j.index]
                    if !((z == 7 || z == 8) && j.distance < 1.25) { reason = "is bonded to one atom only" }
                case 2:
                    let angle = bondAngle(m.positions, i, bonded[0].index, bonded[1].index)
                    if angle < 150 { reason = "has two neighbours at \(Int(angle.rounded()))° (a carbon needs three in a plane, four, or two in a line)" }
                default: break
                }
                if let r = reason {
                    out.append(MoleculeIssue(.openShell,
                        "\(atomName(i)) \(r): a radical or carbene site (hydrogens missing?); the model learned closed-shell molecules", atom: i))
                    break
                }
            }
        }

        return out
    }

    /// For each atom, the other atoms within `cutoff` (Å) and their distances, found through
    /// a cell list (linear in the number of atoms; any coordinates, however large).
    func neighbourLists(_ p: [SIMD3<Double>], cutoff: Double) -> [[(index: Int, distance: Double)]] {
        struct Cell: Hashable { var x: Int64, y: Int64, z: Int64 }
        func cell(_ v: SIMD3<Double>) -> Cell {
            func c(_ x: Double) -> Int64 { Int64(max(-1e15, min(1e15, (x / cutoff).rounded(.down)))) }
            return Cell(x: c(v.x), y: c(v.y), z: c(v.z))
        }
        var cells = [Cell: [Int]]()
        for (i, v) in p.enumerated() { cells[cell(v), default: []].append(i) }
        var out = [[(index: Int, distance: Double)]](repeating: [], count: p.count)
        for (i, v) in p.enumerated() {
            let c = cell(v)
            for dx in Int64(-1)...1 { for dy in Int64(-1)...1 { for dz in Int64(-1)...1 {
                guard let members = cells[Cell(x: c.x + dx, y: c.y + dy, z: c.z + dz)] else { continue }
                for j in members where j != i {
                    let d = v - p[j]
                    let r = (d * d).sum().squareRoot()
                    if r < cutoff { out[i].append((j, r)) }
                }
            } } }
        }
        return out
    }

    private func isBond(_ a: Int, _ b: Int, _ d: Double) -> Bool {
        d < covalentRadius(a) + covalentRadius(b) + 0.45
    }
}

/// Covalent radii (Å; Cordero et al. 2008, sp3 carbon) of H–Ar and common heavier
/// main-group elements; 1.5 Å for the rest.
func covalentRadius(_ z: Int) -> Double {
    let table: [Double] = [0, 0.31, 0.28, 1.28, 0.96, 0.84, 0.76, 0.71, 0.66, 0.57, 0.58,
                           1.66, 1.41, 1.21, 1.11, 1.07, 1.05, 1.02, 1.06]
    if z > 0 && z < table.count { return table[z] }
    switch z {
    case 34, 35: return 1.20   // Se, Br
    case 53: return 1.39       // I
    case 33: return 1.19       // As
    case 32: return 1.20       // Ge
    default: return 1.5
    }
}

private func bondAngle(_ p: [SIMD3<Double>], _ center: Int, _ a: Int, _ b: Int) -> Double {
    let u = p[a] - p[center], v = p[b] - p[center]
    let c = (u * v).sum() / ((u * u).sum() * (v * v).sum()).squareRoot()
    return acos(max(-1, min(1, c))) * 180 / .pi
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

private func signed(_ q: Int) -> String { q > 0 ? "+\(q)" : "\(q)" }

private func format(_ x: Double) -> String {
    if !x.isFinite || abs(x) >= 1e6 { return "\(Float(x))" }
    let r = (x * 100).rounded() / 100
    return r == r.rounded() ? String(Int(r)) + ".0" : "\(r)"
}
