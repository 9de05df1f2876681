import CCairo
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

/// A heat map of values on a regular grid, with a colour bar and optional point markers
/// (e.g. atoms), written as PNG.
///
///     var h = HeatMap(values: v, columns: 300, rows: 200, xRange: -3...3, yRange: -2...2)
///     h.markers = [.init(x: 0, y: 0, label: "C")]
///     try h.write(path: "slice.png")
public struct HeatMap: Sendable {
    public struct Marker: Sendable {
        public var x: Double, y: Double
        public var label: String
        /// Filled when the point lies in the plane, hollow when it is only projected onto it.
        public var filled: Bool
        public init(x: Double, y: Double, label: String, filled: Bool = true) {
            self.x = x; self.y = y; self.label = label; self.filled = filled
        }
    }

    public enum Scale: String, Sendable { case linear, log }

    /// rows × columns values; row 0 is the bottom (y = yRange.lowerBound), column 0 the left.
    public var values: [Float]
    public var columns: Int
    public var rows: Int
    public var xRange: ClosedRange<Double>
    public var yRange: ClosedRange<Double>
    public var title = ""
    public var xLabel = ""
    public var yLabel = ""
    public var colorbarLabel = ""
    public var scale: Scale = .linear
    /// Value range of the colour map; nil = the data's (for log: max/1e4 … max).
    public var valueRange: ClosedRange<Double>? = nil
    public var markers: [Marker] = []
    /// Pixels per grid cell.
    public var cellSize = 2

    public init(values: [Float], columns: Int, rows: Int, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>) {
        precondition(values.count == columns * rows, "one value per cell")
        self.values = values
        self.columns = columns
        self.rows = rows
        self.xRange = xRange
        self.yRange = yRange
    }

    /// Viridis at 9 anchors, linearly interpolated; t in 0…1.
    public static func viridis(_ t: Double) -> PlotColor {
        let anchors: [(Double, Double, Double)] = [
            (0.267, 0.005, 0.329), (0.283, 0.141, 0.458), (0.254, 0.265, 0.530), (0.207, 0.372, 0.553),
            (0.164, 0.471, 0.558), (0.128, 0.567, 0.551), (0.135, 0.659, 0.518), (0.267, 0.749, 0.441),
            (0.478, 0.821, 0.318), (0.741, 0.873, 0.150), (0.993, 0.906, 0.144),
        ]
        let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2), f = x - Double(i)
        let a = anchors[i], b = anchors[i + 1]
        return PlotColor(a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1), a.2 + f * (b.2 - a.2))
    }

    /// The colour-map range actually used.
    public func effectiveRange() -> ClosedRange<Double> {
        if let r = valueRange { return r }
        var lo = Double.infinity, hi = -Double.infinity
        for v in values where v.isFinite { lo = min(lo, Double(v)); hi = max(hi, Double(v)) }
        if !hi.isFinite { return 0...1 }
        if scale == .log {
            let top = hi > 0 ? hi : 1
            return (top * 1e-4)...top
        }
        return hi > lo ? lo...hi : lo...(lo + 1)
    }

    /// Position of a value in the colour map (0…1).
    func fraction(_ v: Double, _ r: ClosedRange<Double>) -> Double {
        switch scale {
        case .linear: return (v - r.lowerBound) / (r.upperBound - r.lowerBound)
        case .log:
            let lo = log10(max(r.lowerBound, 1e-300)), hi = log10(max(r.upperBound, 1e-300))
            return (log10(max(v, 1e-300)) - lo) / max(hi - lo, 1e-12)
        }
    }

    public func write(path: String) throws { try render().writePNG(path: path) }
    public func pngData() throws -> Data { try render().pngData() }

    func render() throws -> Canvas {
        let mapW = columns * cellSize, mapH = rows * cellSize
        let left = 70, top = 45, bar = 22
        let width = left + mapW + 30 + bar + 90, height = top + mapH + 60
        let c = try Canvas(width: width, height: height)
        let r = effectiveRange()
        // The map: fill an ARGB32 image and paint it.
        let img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(mapW), Int32(mapH))
        defer { cairo_surface_destroy(img) }
        cairo_surface_flush(img)
        let stride = Int(cairo_image_surface_get_stride(img))
        if let data = cairo_image_surface_get_data(img) {
            for row in 0..<rows {
                for col in 0..<columns {
                    let col0 = HeatMap.viridis(fraction(Double(values[row * columns + col]), r))
                    let p = UInt32(0xFF00_0000) | UInt32(col0.r * 255) << 16 | UInt32(col0.g * 255) << 8 | UInt32(col0.b * 255)
                    let y0 = (rows - 1 - row) * cellSize
                    for dy in 0..<cellSize {
                        let line = UnsafeMutableRawPointer(data + (y0 + dy) * stride)
                        for dx in 0..<cellSize { line.storeBytes(of: p, toByteOffset: 4 * (col * cellSize + dx), as: UInt32.self) }
                    }
                }
            }
        }
        cairo_surface_mark_dirty(img)
        cairo_set_source_surface(c.cr, img, Double(left), Double(top))
        cairo_paint(c.cr)
        // Frame, ticks and labels.
        let L = Double(left), T = Double(top), W = Double(mapW), H = Double(mapH)
        func px(_ x: Double) -> Double { L + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * W }
        func py(_ y: Double) -> Double { T + H - (y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * H }
        c.setColor(.black)
        cairo_set_line_width(c.cr, 1)
        cairo_rectangle(c.cr, L, T, W, H)
        cairo_stroke(c.cr)
        c.text(title, x: L + W / 2, y: 22, size: 15)
        let xt = niceTicks(xRange.lowerBound, xRange.upperBound, target: 6)
        let yt = niceTicks(yRange.lowerBound, yRange.upperBound, target: 6)
        for x in xt {
            c.line(px(x), T + H, px(x), T + H + 5)
            c.text(tickLabel(x, step: xt.count > 1 ? xt[1] - xt[0] : 1), x: px(x), y: T + H + 17, size: 11)
        }
        for y in yt {
            c.line(L - 5, py(y), L, py(y))
            c.text(tickLabel(y, step: yt.count > 1 ? yt[1] - yt[0] : 1), x: L - 8, y: py(y), size: 11, anchor: .right)
        }
        c.text(xLabel, x: L + W / 2, y: T + H + 40, size: 13)
        c.text(yLabel, x: 18, y: T + H / 2, size: 13, angle: -Double.pi / 2)
        // Markers.
        cairo_save(c.cr)
        cairo_rectangle(c.cr, L, T, W, H)
        cairo_clip(c.cr)
        for m in markers {
            let x = px(m.x), y = py(m.y)
            cairo_new_path(c.cr)
            cairo_arc(c.cr, x, y, 5, 0, 2 * Double.pi)
            if m.filled {
                c.setColor(.white)
                cairo_fill_preserve(c.cr)
            }
            c.setColor(.black)
            cairo_set_line_width(c.cr, 1.5)
            cairo_stroke(c.cr)
            c.text(m.label, x: x + 7, y: y - 8, size: 12, anchor: .left, color: .white)
        }
        cairo_restore(c.cr)
        // Colour bar.
        let bx = L + W + 30
        for i in 0..<Int(H) {
            let t = 1 - Double(i) / max(H - 1, 1)
            c.setColor(HeatMap.viridis(t))
            cairo_rectangle(c.cr, bx, T + Double(i), Double(bar), 1)
            cairo_fill(c.cr)
        }
        c.setColor(.black)
        cairo_rectangle(c.cr, bx, T, Double(bar), H)
        cairo_stroke(c.cr)
        let ticks: [Double]
        if scale == .log {
            let lo = log10(max(r.lowerBound, 1e-300)), hi = log10(max(r.upperBound, 1e-300))
            ticks = Swift.stride(from: lo.rounded(.up), through: hi, by: 1).map { pow(10, $0) }
        } else {
            ticks = niceTicks(r.lowerBound, r.upperBound, target: 6)
        }
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for v in ticks {
            let y = T + H - fraction(v, r) * H
            guard y >= T - 0.5 && y <= T + H + 0.5 else { continue }
            c.line(bx + Double(bar), y, bx + Double(bar) + 4, y)
            let label = scale == .log ? String(format: "1e%d", Int(log10(v).rounded())) : tickLabel(v, step: step)
            c.text(label, x: bx + Double(bar) + 7, y: y, size: 11, anchor: .left)
        }
        c.text(colorbarLabel, x: bx + Double(bar) + 70, y: T + H / 2, size: 12, angle: -Double.pi / 2)
        return c
    }
}
