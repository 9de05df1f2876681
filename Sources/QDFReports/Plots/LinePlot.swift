import CCairo
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

/// A line plot: several series, axes with ticks and labels, a legend and optional
/// vertical markers (e.g. atom positions), written as PNG.
///
///     var p = LinePlot(title: "C–C density", xLabel: "s (Å)", yLabel: "ρ (e/bohr³)")
///     p.add("QDF", x: s, y: rho)
///     p.add("DFT", x: s, y: ref, dashed: true)
///     try p.write(path: "profile.png")
public struct LinePlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var color: PlotColor
        public var dashed: Bool
        public var lineWidth: Double
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    /// Vertical lines with a label at the top (x, label).
    public var markers: [(x: Double, label: String)] = []
    public var width = 900
    public var height = 560
    /// Axis ranges; nil = from the data (y from 0 when all data are non-negative).
    public var xRange: ClosedRange<Double>? = nil
    public var yRange: ClosedRange<Double>? = nil
    /// A logarithmic y axis (non-positive values are left out).
    public var logY = false

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    /// Adds a series (NaN values leave gaps); colours cycle through the palette.
    public mutating func add(_ name: String, x: [Double], y: [Double], color: PlotColor? = nil,
                             dashed: Bool = false, lineWidth: Double = 2) {
        precondition(x.count == y.count, "a series needs as many x as y values")
        series.append(Series(name: name, x: x, y: y,
                             color: color ?? PlotColor.palette[series.count % PlotColor.palette.count],
                             dashed: dashed, lineWidth: lineWidth))
    }

    /// The data ranges the axes will show.
    func ranges() -> (ClosedRange<Double>, ClosedRange<Double>) {
        var xlo = Double.infinity, xhi = -Double.infinity, ylo = Double.infinity, yhi = -Double.infinity
        for s in series {
            for (x, y) in zip(s.x, s.y) where x.isFinite && y.isFinite && (!logY || y > 0) {
                xlo = min(xlo, x); xhi = max(xhi, x); ylo = min(ylo, y); yhi = max(yhi, y)
            }
        }
        if !xlo.isFinite { xlo = 0; xhi = 1 }
        if !ylo.isFinite { ylo = 0; yhi = 1 }
        if xhi <= xlo { xhi = xlo + 1 }
        if logY {
            if yhi <= ylo { yhi = ylo * 10 }
            return (xRange ?? xlo...xhi, yRange ?? (ylo / 1.5)...(yhi * 1.5))
        }
        if ylo >= 0 { ylo = 0 }
        if yhi <= ylo { yhi = ylo + 1 }
        let pad = (yhi - ylo) * 0.05
        return (xRange ?? xlo...xhi, yRange ?? ylo...(yhi + pad))
    }

    /// Renders the plot and writes it as PNG (atomically).
    public func write(path: String) throws { try render().writePNG(path: path) }

    /// The plot's PNG bytes.
    public func pngData() throws -> Data { try render().pngData() }

    func render() throws -> Canvas {
        let c = try Canvas(width: width, height: height)
        let (xr, yr) = ranges()
        let left = 90.0, right = Double(width) - 25, top = 50.0, bottom = Double(height) - 65
        func px(_ x: Double) -> Double { left + (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * (right - left) }
        let ylo = logY ? log10(yr.lowerBound) : yr.lowerBound, yhi = logY ? log10(yr.upperBound) : yr.upperBound
        func py(_ y: Double) -> Double { bottom - ((logY ? log10(y) : y) - ylo) / (yhi - ylo) * (bottom - top) }
        c.text(title, x: (left + right) / 2, y: 25, size: 16)
        // Grid and ticks.
        let xt = niceTicks(xr.lowerBound, xr.upperBound, target: 8)
        let yt = logY ? Swift.stride(from: ylo.rounded(.up), through: yhi, by: 1).map { pow(10, $0) }
                      : niceTicks(yr.lowerBound, yr.upperBound, target: 6)
        let xstep = xt.count > 1 ? xt[1] - xt[0] : 1, ystep = yt.count > 1 ? yt[1] - yt[0] : 1
        for x in xt {
            c.line(px(x), top, px(x), bottom, width: 1, color: PlotColor(0.9, 0.9, 0.9))
            c.line(px(x), bottom, px(x), bottom + 5)
            c.text(tickLabel(x, step: xstep), x: px(x), y: bottom + 18, size: 12)
        }
        for y in yt {
            c.line(left, py(y), right, py(y), width: 1, color: PlotColor(0.9, 0.9, 0.9))
            c.line(left - 5, py(y), left, py(y))
            c.text(logY ? String(format: "1e%d", Int(log10(y).rounded())) : tickLabel(y, step: ystep),
                   x: left - 8, y: py(y), size: 12, anchor: .right)
        }
        c.text(xLabel, x: (left + right) / 2, y: Double(height) - 20, size: 14)
        c.text(yLabel, x: 22, y: (top + bottom) / 2, size: 14, angle: -Double.pi / 2)
        // Markers.
        for m in markers where xr.contains(m.x) {
            cairo_set_dash(c.cr, [4, 4], 2, 0)
            c.line(px(m.x), top, px(m.x), bottom, width: 1, color: .gray)
            cairo_set_dash(c.cr, nil, 0, 0)
            c.text(m.label, x: px(m.x), y: top - 8, size: 12, color: .gray)
        }
        // Series, clipped to the plot area.
        cairo_save(c.cr)
        cairo_rectangle(c.cr, left, top, right - left, bottom - top)
        cairo_clip(c.cr)
        for s in series {
            c.setColor(s.color)
            cairo_set_line_width(c.cr, s.lineWidth)
            if s.dashed { cairo_set_dash(c.cr, [8, 5], 2, 0) } else { cairo_set_dash(c.cr, nil, 0, 0) }
            var pen = false
            for (x, y) in zip(s.x, s.y) {
                guard x.isFinite && y.isFinite && (!logY || y > 0) else { pen = false; continue }
                if pen { cairo_line_to(c.cr, px(x), py(y)) } else { cairo_move_to(c.cr, px(x), py(y)); pen = true }
            }
            cairo_stroke(c.cr)
        }
        cairo_set_dash(c.cr, nil, 0, 0)
        cairo_restore(c.cr)
        // Frame.
        c.setColor(.black)
        cairo_set_line_width(c.cr, 1)
        cairo_rectangle(c.cr, left, top, right - left, bottom - top)
        cairo_stroke(c.cr)
        // Legend (top right).
        if !series.isEmpty {
            let w = series.map { c.textWidth($0.name, size: 13) }.max()! + 50
            let h = Double(series.count) * 20 + 10
            let x0 = right - w - 10, y0 = top + 10
            c.setColor(.white, alpha: 0.85)
            cairo_rectangle(c.cr, x0, y0, w, h)
            cairo_fill(c.cr)
            c.setColor(.gray)
            cairo_rectangle(c.cr, x0, y0, w, h)
            cairo_stroke(c.cr)
            for (i, s) in series.enumerated() {
                let y = y0 + 15 + Double(i) * 20
                if s.dashed { cairo_set_dash(c.cr, [8, 5], 2, 0) }
                c.line(x0 + 8, y, x0 + 36, y, width: s.lineWidth, color: s.color)
                cairo_set_dash(c.cr, nil, 0, 0)
                c.text(s.name, x: x0 + 42, y: y, size: 13, anchor: .left)
            }
        }
        return c
    }
}
