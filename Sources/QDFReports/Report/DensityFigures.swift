import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// Figures of a density: a profile plot along a bond and a slice heat map.

extension DensityProfile {
    /// A line plot of one or more profiles (s in Å, ρ in e/bohr³) with the two atoms marked.
    public static func plot(_ profiles: [(name: String, profile: DensityProfile)], title: String,
                            atomLabels: (String, String), bondLength: Double, logY: Bool = false) -> LinePlot {
        var p = LinePlot(title: title, xLabel: "distance from atom \(atomLabels.0) along the bond (Å)",
                         yLabel: "ρ (e/bohr³)")
        for (i, x) in profiles.enumerated() {
            p.add(x.name, x: x.profile.s, y: x.profile.density, dashed: i > 0)
        }
        p.markers = [(0, atomLabels.0), (bondLength, atomLabels.1)]
        p.logY = logY
        return p
    }
}

/// ρ on a plane, as a heat map.
public enum DensitySlice {
    /// Evaluates ρ·scale (plus the frozen cores when given) on `plane` over the atoms' projected extent plus `margin` Å,
    /// `cellsAcross` cells along the longer side; atoms within `inPlane` Å of the plane
    /// are filled markers, the others hollow (projected).
    public static func heatMap(_ field: DensityField, plane: DensityPlane, scale: Double, cores: FrozenCores?, margin: Double = 2,
                               cellsAcross: Int = 300, inPlane: Double = 0.3) -> HeatMap {
        let m = field.molecule
        let proj = m.positions.map { plane.project($0) }
        let x0 = proj.map(\.x).min()! - margin, x1 = proj.map(\.x).max()! + margin
        let y0 = proj.map(\.y).min()! - margin, y1 = proj.map(\.y).max()! + margin
        let h = max(x1 - x0, y1 - y0) / Double(max(cellsAcross, 2))
        let cols = max(2, Int(((x1 - x0) / h).rounded())), rows = max(2, Int(((y1 - y0) / h).rounded()))
        // Cell centres.
        let cell = { (n: Int) -> SIMD3<Double> in
            let r = n / cols, c = n % cols
            return plane.point(x: x0 + (Double(c) + 0.5) * (x1 - x0) / Double(cols),
                               y: y0 + (Double(r) + 0.5) * (y1 - y0) / Double(rows))
        }
        let rho = field.evaluate(count: cols * rows, orbitals: [], point: cell).density
        let fs = Float(scale)
        var values = rho.map { $0 * fs }
        if let c = cores, !c.isEmpty {
            for (n, v) in c.density(angstrom: values.indices.map(cell)).enumerated() { values[n] += Float(v) }
        }
        var map = HeatMap(values: values, columns: cols, rows: rows, xRange: x0...x1, yRange: y0...y1)
        map.markers = zip(m.symbols, proj).enumerated().map { i, sp in
            HeatMap.Marker(x: sp.1.x, y: sp.1.y, label: "\(sp.0)\(i + 1)", filled: abs(sp.1.height) <= inPlane)
        }
        map.xLabel = "x in plane (Å)"
        map.yLabel = "y in plane (Å)"
        map.colorbarLabel = "ρ (e/bohr³)"
        map.cellSize = max(1, 600 / max(cols, rows))
        return map
    }
}
