import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// The report's figures, built as Figure descriptions (drawn by the SVG and cairo
// backends): MAE by number of atoms with the training sizes shaded, the parity plot,
// and the learning curves. Every mark carries the numbers it shows as data.

/// One run's MAE-by-size curve.
public struct SizeSeries: Sendable {
    public var label: String
    public var bins: [SizeBin]
    /// The run's colour (the same in every figure).
    public var color: RGB
    public init(label: String, bins: [SizeBin], color: RGB) { self.label = label; self.bins = bins; self.color = color }
}

/// One run's predictions for the parity plot (one output).
public struct ParitySeries: Sendable {
    public var label: String
    public var ids: [String]
    public var correct: [Double]
    public var predicted: [Double]
    public var color: RGB
    public init(label: String, ids: [String], correct: [Double], predicted: [Double], color: RGB) {
        self.label = label; self.ids = ids; self.correct = correct; self.predicted = predicted; self.color = color
    }
    public var mae: Double {
        zip(correct, predicted).reduce(0) { $0 + abs($1.1 - $1.0) } / Double(max(1, correct.count))
    }
}

/// Formats a value for data attributes and tables (round-trips a Double).
func dataNumber(_ v: Double) -> String { "\(v)" }

func unitSuffix(_ unit: String?) -> String { unit.map { " (\($0))" } ?? "" }

/// Pads a [lo, hi] data range for an axis (linear: by a fraction of the span; log: by a factor).
func paddedRange(_ lo: Double, _ hi: Double, log: Bool, fraction: Double = 0.04) -> (Double, Double) {
    if log {
        let l = Foundation.log10(lo), h = Foundation.log10(hi)
        let pad = Swift.max(h - l, 0.3) * fraction
        return (Foundation.pow(10, l - pad), Foundation.pow(10, h + pad))
    }
    let span = hi - lo
    if span <= 0 { let d = Swift.max(abs(lo) * 0.1, 1); return (lo - d, hi + d) }
    return (lo - span * fraction, hi + span * fraction)
}

/// MAE against the number of atoms, one line per run, with molecule counts in a lower
/// panel; the training sizes are shaded as the interpolation region, sizes beyond as
/// extrapolation.
public func maeBySizeFigure(_ series: [SizeSeries], trainRange: ClosedRange<Int>?, unit: String?,
                            outputName: String = "", id: String = "mae-by-size") -> Figure {
    let smallBin = 10  // sizes with fewer molecules are drawn pale
    var fig = Figure(id: id, title: "MAE\(outputName) by number of atoms", width: 600, height: 400)
    let allBins = series.flatMap(\.bins)
    var lo = allBins.map(\.atoms).min() ?? 1, hi = allBins.map(\.atoms).max() ?? 2
    if let t = trainRange { lo = Swift.min(lo, t.lowerBound); hi = Swift.max(hi, t.upperBound) }
    let xMin = Double(lo) - 0.5, xMax = Double(hi) + 0.5
    let maeMax = allBins.flatMap(\.mae).filter(\.isFinite).max() ?? 1
    let countMax = allBins.map(\.count).max() ?? 1
    let left = 64.0, right = 16.0
    let w = fig.width - left - right
    let top = PlotArea(x: left, y: 16, width: w, height: 236,
                       xAxis: Axis(min: xMin, max: xMax, label: "number of atoms", integer: true, tickTarget: 14),
                       yAxis: Axis(min: 0, max: maeMax * 1.12, label: "MAE\(outputName)\(unitSuffix(unit))"))
    let bottom = PlotArea(x: left, y: 264, width: w, height: 86,
                          xAxis: top.xAxis,
                          yAxis: Axis(min: 0, max: Double(countMax) * 1.15, label: "molecules", tickTarget: 3))
    // Regions first, under everything else.
    let interpColor = RGB.series(0), extrapColor = RGB.series(1)
    func shade(_ p: PlotArea, labels: Bool, rects: Bool = true) {
        guard let t = trainRange else { return }
        let a = p.px(Double(t.lowerBound) - 0.5), b = p.px(Double(t.upperBound) + 0.5)
        if rects {
        fig.items.append(.rect(x: a, y: p.y, width: b - a, height: p.height, fill: interpColor, opacity: 0.08,
                               stroke: nil, strokeWidth: 0, data: [("region", "interpolation"),
                                                                   ("atoms", "\(t.lowerBound)-\(t.upperBound)")]))
        if b < p.x + p.width {
            fig.items.append(.rect(x: b, y: p.y, width: p.x + p.width - b, height: p.height, fill: extrapColor,
                                   opacity: 0.10, stroke: nil, strokeWidth: 0,
                                   data: [("region", "extrapolation"), ("atoms", ">\(t.upperBound)")]))
        }
        if a > p.x {
            fig.items.append(.rect(x: p.x, y: p.y, width: a - p.x, height: p.height, fill: extrapColor,
                                   opacity: 0.10, stroke: nil, strokeWidth: 0,
                                   data: [("region", "extrapolation"), ("atoms", "<\(t.lowerBound)")]))
        }
        }
        if labels {
            fig.items.append(.text("training sizes \(t.lowerBound)–\(t.upperBound) (interpolation)",
                                   at: SIMD2((a + b) / 2, p.y + 13), size: 9, anchor: .middle, rotation: 0,
                                   color: RGB(hex: 0x1b5e91), bold: false))
            if b < p.x + p.width - 40 {
                fig.items.append(.text("extrapolation", at: SIMD2((b + p.x + p.width) / 2, p.y + 13), size: 9,
                                       anchor: .middle, rotation: 0, color: RGB(hex: 0xb35806), bold: false))
            }
        }
    }
    shade(top, labels: false)
    shade(bottom, labels: false)
    fig.items += top.frame(xLabels: false)
    fig.items += bottom.frame()
    shade(top, labels: true, rects: false)
    var legendEntries = [LegendEntry]()
    let R = series.count
    for (r, s) in series.enumerated() {
        let color = s.color
        var marks = [FigureItem]()
        let pts = s.bins.filter { $0.mae.first?.isFinite == true }
        marks.append(.polyline(points: pts.map { top.point(Double($0.atoms), $0.mae[0]) }, color: color,
                               width: 1.4, dash: [], data: []))
        for b in pts {
            marks.append(.circle(center: top.point(Double(b.atoms), b.mae[0]), radius: 2.6, fill: color,
                                 opacity: b.count < smallBin ? 0.35 : 1,
                                 data: [("atoms", "\(b.atoms)"), ("count", "\(b.count)"),
                                        ("mae", dataNumber(b.mae[0])), ("rmse", dataNumber(b.rmse[0]))]))
        }
        fig.items.append(.group(name: "series mae", data: [("label", s.label)], items: marks))
        var bars = [FigureItem]()
        let bw = 0.8 / Double(R)
        for b in s.bins {
            let x0 = bottom.px(Double(b.atoms) - 0.4 + bw * Double(r)), x1 = bottom.px(Double(b.atoms) - 0.4 + bw * Double(r + 1))
            let y0 = bottom.py(Double(b.count))
            bars.append(.rect(x: x0, y: y0, width: x1 - x0, height: bottom.y + bottom.height - y0, fill: color,
                              opacity: 0.75, stroke: nil, strokeWidth: 0,
                              data: [("atoms", "\(b.atoms)"), ("count", "\(b.count)")]))
        }
        fig.items.append(.group(name: "series counts", data: [("label", s.label)], items: bars))
        legendEntries.append(LegendEntry(s.label, color: color, style: .marker))
    }
    // Legend at the upper left, where errors within the training sizes are small.
    let lw = 33 + (legendEntries.map { textWidth($0.label, size: 9) }.max() ?? 0)
    fig.items += legend(legendEntries, right: top.x + 6 + lw, top: top.y + 22)
    return fig
}

/// Predicted against correct values, one colour per run, with the diagonal.
public func parityFigure(_ series: [ParitySeries], unit: String?, outputName: String = "",
                         id: String = "parity") -> Figure {
    var fig = Figure(id: id, title: "Parity plot\(outputName)", width: 440, height: 400)
    let all = series.flatMap { $0.correct + $0.predicted }.filter(\.isFinite)
    let (lo, hi) = paddedRange(all.min() ?? 0, all.max() ?? 1, log: false)
    let size = 316.0
    let area = PlotArea(x: 82, y: 16, width: size, height: size,
                        xAxis: Axis(min: lo, max: hi, label: "correct\(outputName)\(unitSuffix(unit))"),
                        yAxis: Axis(min: lo, max: hi, label: "predicted\(outputName)\(unitSuffix(unit))"))
    fig.items += area.frame()
    var marks: [FigureItem] = [.polyline(points: [area.point(lo, lo), area.point(hi, hi)], color: .grey, width: 0.8,
                                         dash: [4, 3], data: [])]
    var entries = [LegendEntry]()
    for s in series {
        let color = s.color
        var pts = [FigureItem]()
        pts.reserveCapacity(s.ids.count)
        for i in 0..<s.ids.count {
            pts.append(.circle(center: area.point(s.correct[i], s.predicted[i]), radius: 1.5, fill: color, opacity: 0.45,
                               data: [("id", s.ids[i]), ("correct", dataNumber(s.correct[i])),
                                      ("predict", dataNumber(s.predicted[i]))]))
        }
        marks.append(.group(name: "series parity", data: [("label", s.label), ("count", "\(s.ids.count)"),
                                                          ("mae", dataNumber(s.mae))], items: pts))
        entries.append(LegendEntry("\(s.label): MAE \(String(format: "%.4f", s.mae))\(unit.map { " \($0)" } ?? "")",
                                   color: color, style: .marker))
    }
    fig.items.append(.clipped(x: area.x, y: area.y, width: area.width, height: area.height, items: marks))
    // The legend goes to the lower right, below the diagonal.
    let lh = 10.0 + Double(entries.count) * 13.5
    fig.items += legend(entries, right: area.x + area.width - 6, top: area.y + area.height - 6 - lh)
    return fig
}

/// One run's learning curve for the figure.
public struct CurveSeries: Sendable {
    public var label: String
    public var curve: LearningCurve
    public var color: RGB
    public init(label: String, curve: LearningCurve, color: RGB) { self.label = label; self.curve = curve; self.color = color }
}

/// The x axis of learning curves: epochs, or training time (to compare recipes and machines).
public enum CurveAxis: String, Sendable, CaseIterable {
    case epoch
    case hours

    /// The x values of a curve; nil when it has no times and the axis is time.
    func xs(_ c: LearningCurve) -> [Double]? {
        switch self {
        case .epoch: return c.epoch
        case .hours: return c.seconds.count == c.epoch.count ? c.seconds.map { $0 / 3600 } : nil
        }
    }
}

/// Training losses (log scale) and validation/test MAE (log scale) per epoch (or against
/// training time in hours), side by side. With `.hours`, curves without times are left out.
public func learningCurveFigure(_ series: [CurveSeries], unit: String?, axis: CurveAxis = .epoch,
                                id: String = "learning-curves") -> Figure {
    var fig = Figure(id: id, title: "Learning curves", width: 600, height: 400)
    let series = series.filter { axis.xs($0.curve) != nil }
    let maxEpoch = series.compactMap { axis.xs($0.curve)?.last }.max() ?? 1
    let minEpoch = axis == .hours ? 0 : series.compactMap { $0.curve.epoch.first }.min() ?? 0
    let xr = maxEpoch > minEpoch ? (minEpoch, maxEpoch) : (minEpoch - 1, maxEpoch + 1)
    func yRange(_ values: [[Double]]) -> (Double, Double) {
        let v = values.flatMap { $0 }.filter { $0.isFinite && $0 > 0 }
        return paddedRange(v.min() ?? 0.1, v.max() ?? 1, log: true)
    }
    let losses = yRange(series.flatMap { [$0.curve.lossE, $0.curve.lossV] })
    let maes = yRange(series.flatMap { [$0.curve.maeVal, $0.curve.maeTest] })
    let panelW = 222.0
    let a = PlotArea(x: 62, y: 16, width: panelW, height: 330,
                     xAxis: Axis(min: xr.0, max: xr.1, label: axis == .hours ? "training time (h)" : "epoch",
                                 integer: axis == .epoch),
                     yAxis: Axis(min: losses.0, max: losses.1, log: true, label: "training loss"))
    let b = PlotArea(x: 62 + panelW + 88, y: 16, width: panelW, height: 330,
                     xAxis: a.xAxis,
                     yAxis: Axis(min: maes.0, max: maes.1, log: true, label: "MAE\(unitSuffix(unit))"))
    fig.items += a.frame() + b.frame()
    var la = [FigureItem](), lb = [FigureItem]()
    func line(_ p: PlotArea, _ label: String, _ name: String, _ xs: [Double], _ ys: [Double], _ color: RGB,
              _ dash: [Double]) -> FigureItem {
        var pts = [SIMD2<Double>]()
        pts.reserveCapacity(xs.count)
        for (x, y) in zip(xs, ys) where p.drawableY(y) { pts.append(p.point(x, y)) }
        let finite = ys.filter { $0.isFinite }
        return .polyline(points: pts, color: color, width: 1.1, dash: dash,
                         data: [("label", label), ("series", name), ("points", "\(pts.count)"),
                                ("last", finite.last.map(dataNumber) ?? "nan"),
                                ("min", finite.min().map(dataNumber) ?? "nan")])
    }
    var entries = [LegendEntry]()
    for s in series {
        let c = s.curve, color = s.color, x = axis.xs(c)!
        la.append(line(a, s.label, "Loss_E", x, c.lossE, color, []))
        la.append(line(a, s.label, "Loss_V", x, c.lossV, color, [4, 2.5]))
        lb.append(line(b, s.label, "MAE_val", x, c.maeVal, color, []))
        lb.append(line(b, s.label, "MAE_test", x, c.maeTest, color, [4, 2.5]))
        entries.append(LegendEntry(s.label, color: color, style: .line(dash: [])))
    }
    fig.items.append(.clipped(x: a.x, y: a.y, width: a.width, height: a.height, items: la))
    fig.items.append(.clipped(x: b.x, y: b.y, width: b.width, height: b.height, items: lb))
    fig.items += legend(entries + [LegendEntry("Loss_E", color: .grey, style: .line(dash: [])),
                                   LegendEntry("Loss_V", color: .grey, style: .line(dash: [4, 2.5]))],
                        right: a.x + a.width - 6, top: a.y + 6, fontSize: 8.5)
    fig.items += legend([LegendEntry("validation", color: .grey, style: .line(dash: [])),
                         LegendEntry("test", color: .grey, style: .line(dash: [4, 2.5]))],
                        right: b.x + b.width - 6, top: b.y + 6, fontSize: 8.5)
    return fig
}
