import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// A figure as a list of drawing items (lines, rectangles, markers, texts) in points,
// origin at the top left, y downwards. Two backends draw the same description:
// SVG (FigureSVG.swift, for the HTML report) and cairo (ReportPNG.swift, for PNG files).

public struct RGB: Sendable, Equatable {
    public var r, g, b: Double
    public init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }
    public init(hex: UInt32) {
        r = Double((hex >> 16) & 0xff) / 255; g = Double((hex >> 8) & 0xff) / 255; b = Double(hex & 0xff) / 255
    }
    public var css: String {
        func h(_ v: Double) -> String { String(format: "%02x", Int((max(0, min(1, v)) * 255).rounded())) }
        return "#" + h(r) + h(g) + h(b)
    }
    public static let black = RGB(0, 0, 0)
    public static let white = RGB(1, 1, 1)
    public static let grey = RGB(hex: 0x888888)
    public static let lightGrey = RGB(hex: 0xe6e6e6)
    /// Series colours (matplotlib's tab10), in order.
    public static let palette: [RGB] = [0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                        0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf].map { RGB(hex: $0) }
    public static func series(_ i: Int) -> RGB { palette[i % palette.count] }
}

public enum TextAnchor: String, Sendable { case start, middle, end }

/// Name/value pairs written as `data-*` attributes in SVG: the numbers behind a mark,
/// so that tests (and curious readers) can check them.
public typealias MarkData = [(String, String)]

public indirect enum FigureItem: Sendable {
    case polyline(points: [SIMD2<Double>], color: RGB, width: Double, dash: [Double], data: MarkData)
    case rect(x: Double, y: Double, width: Double, height: Double, fill: RGB?, opacity: Double,
              stroke: RGB?, strokeWidth: Double, data: MarkData)
    case circle(center: SIMD2<Double>, radius: Double, fill: RGB, opacity: Double, data: MarkData)
    case text(String, at: SIMD2<Double>, size: Double, anchor: TextAnchor, rotation: Double,
              color: RGB, bold: Bool)
    /// Items clipped to a rectangle.
    case clipped(x: Double, y: Double, width: Double, height: Double, items: [FigureItem])
    /// A named group (an SVG `<g class=…>`), e.g. one series.
    case group(name: String, data: MarkData, items: [FigureItem])
}

public struct Figure: Sendable {
    /// Used to make SVG ids unique when several figures share one HTML page.
    public var id: String
    public var title: String
    public var width: Double
    public var height: Double
    public var items: [FigureItem] = []

    public init(id: String, title: String, width: Double, height: Double) {
        self.id = id; self.title = title; self.width = width; self.height = height
    }
}

/// An estimate of a text's width in points (for legends and margins; DejaVu Sans ≈ 0.58 em).
func textWidth(_ s: String, size: Double) -> Double { Double(s.count) * size * 0.58 }

// MARK: - Axes

public struct Axis: Sendable {
    public var min: Double
    public var max: Double
    public var log: Bool
    public var label: String
    /// Integer ticks only (atom counts, epochs).
    public var integer = false
    /// About how many ticks a linear axis gets.
    public var tickTarget = 6

    public init(min: Double, max: Double, log: Bool = false, label: String, integer: Bool = false, tickTarget: Int = 6) {
        self.min = min; self.max = max; self.log = log; self.label = label; self.integer = integer
        self.tickTarget = tickTarget
    }

    /// Where `v` lies between min (0) and max (1).
    public func fraction(_ v: Double) -> Double {
        if log { return (Foundation.log10(v) - Foundation.log10(min)) / (Foundation.log10(max) - Foundation.log10(min)) }
        return (v - min) / (max - min)
    }

    /// Tick values: 1-2-5 steps on linear axes, decades (and 2, 5 within narrow ranges) on log axes.
    public func ticks() -> [Double] {
        let target = tickTarget
        if log {
            let lo = Int(Foundation.floor(Foundation.log10(min))), hi = Int(Foundation.ceil(Foundation.log10(max)))
            let decades = hi - lo
            let mult: [Double] = decades <= 3 ? [1, 2, 5] : [1]
            let stride = decades > 8 ? 2 : 1
            var out = [Double]()
            for e in Swift.stride(from: lo, through: hi, by: stride) {
                for m in mult {
                    let v = m * Foundation.pow(10, Double(e))
                    if v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9) { out.append(v) }
                }
            }
            return out
        }
        let span = max - min
        guard span > 0 else { return [min] }
        let raw = span / Double(target)
        let mag = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
        var step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        if integer { step = Swift.max(1, step.rounded()) }
        var out = [Double]()
        var v = Foundation.ceil(min / step - 1e-9) * step
        while v <= max + step * 1e-9 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    public func format(_ v: Double) -> String {
        if log {
            let e = Foundation.log10(v)
            if abs(e - e.rounded()) < 1e-9 {
                let n = Int(e.rounded())
                return n >= -3 && n <= 4 ? formatPlain(v) : "1e\(n)"
            }
            return formatPlain(v)
        }
        return formatPlain(v)
    }

    private func formatPlain(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
        var s = String(format: "%.4g", v)
        if s.contains("e") { return s }
        while s.contains(".") && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
        return s
    }
}

/// A rectangular plot area in a figure, with an x and a y axis.
public struct PlotArea: Sendable {
    public var x: Double, y: Double, width: Double, height: Double
    public var xAxis: Axis
    public var yAxis: Axis

    public func px(_ v: Double) -> Double { x + xAxis.fraction(v) * width }
    public func py(_ v: Double) -> Double { y + height - yAxis.fraction(v) * height }
    public func point(_ vx: Double, _ vy: Double) -> SIMD2<Double> { SIMD2(px(vx), py(vy)) }

    /// Whether a value can be drawn on the y axis (positive on log axes).
    public func drawableY(_ v: Double) -> Bool { v.isFinite && (!yAxis.log || v > 0) }

    /// Frame, grid lines, ticks, tick labels and axis labels.
    public func frame(fontSize: Double = 10, xLabels: Bool = true) -> [FigureItem] {
        var items = [FigureItem]()
        for t in xAxis.ticks() {
            let X = px(t)
            items.append(.polyline(points: [SIMD2(X, y), SIMD2(X, y + height)], color: .lightGrey, width: 0.6, dash: [], data: []))
            items.append(.polyline(points: [SIMD2(X, y + height), SIMD2(X, y + height + 4)], color: .black, width: 0.8, dash: [], data: []))
            if xLabels {
                items.append(.text(xAxis.format(t), at: SIMD2(X, y + height + 6 + fontSize * 0.8), size: fontSize,
                                   anchor: .middle, rotation: 0, color: .black, bold: false))
            }
        }
        for t in yAxis.ticks() {
            let Y = py(t)
            items.append(.polyline(points: [SIMD2(x, Y), SIMD2(x + width, Y)], color: .lightGrey, width: 0.6, dash: [], data: []))
            items.append(.polyline(points: [SIMD2(x - 4, Y), SIMD2(x, Y)], color: .black, width: 0.8, dash: [], data: []))
            items.append(.text(yAxis.format(t), at: SIMD2(x - 6, Y + fontSize * 0.35), size: fontSize,
                               anchor: .end, rotation: 0, color: .black, bold: false))
        }
        items.append(.rect(x: x, y: y, width: width, height: height, fill: nil, opacity: 1,
                           stroke: .black, strokeWidth: 0.8, data: []))
        if xLabels {
            items.append(.text(xAxis.label, at: SIMD2(x + width / 2, y + height + 10 + fontSize * 2), size: fontSize * 1.1,
                               anchor: .middle, rotation: 0, color: .black, bold: false))
        }
        let widest = yAxis.ticks().map { textWidth(yAxis.format($0), size: fontSize) }.max() ?? 20
        items.append(.text(yAxis.label, at: SIMD2(x - widest - 14, y + height / 2), size: fontSize * 1.1,
                           anchor: .middle, rotation: -90, color: .black, bold: false))
        return items
    }
}

/// A legend entry: a coloured line (optionally dashed), a marker, or a filled box.
public struct LegendEntry: Sendable {
    public enum Style: Sendable { case line(dash: [Double]), marker, box(opacity: Double) }
    public var label: String
    public var color: RGB
    public var style: Style
    public init(_ label: String, color: RGB, style: Style) { self.label = label; self.color = color; self.style = style }
}

/// A legend box with its top-right corner at (right, top).
public func legend(_ entries: [LegendEntry], right: Double, top: Double, fontSize: Double = 9) -> [FigureItem] {
    guard !entries.isEmpty else { return [] }
    let row = fontSize * 1.5, swatch = 18.0, pad = 5.0
    let w = pad * 3 + swatch + (entries.map { textWidth($0.label, size: fontSize) }.max() ?? 0)
    let h = pad * 2 + row * Double(entries.count) - (row - fontSize * 1.1)
    let x0 = right - w, y0 = top
    var items: [FigureItem] = [.rect(x: x0, y: y0, width: w, height: h, fill: .white, opacity: 0.9,
                                     stroke: .grey, strokeWidth: 0.5, data: [])]
    for (i, e) in entries.enumerated() {
        let cy = y0 + pad + fontSize * 0.55 + row * Double(i)
        let sx = x0 + pad
        switch e.style {
        case .line(let dash):
            items.append(.polyline(points: [SIMD2(sx, cy), SIMD2(sx + swatch, cy)], color: e.color, width: 1.6, dash: dash, data: []))
        case .marker:
            items.append(.circle(center: SIMD2(sx + swatch / 2, cy), radius: 2.8, fill: e.color, opacity: 1, data: []))
        case .box(let opacity):
            items.append(.rect(x: sx, y: cy - fontSize * 0.45, width: swatch, height: fontSize * 0.9, fill: e.color,
                               opacity: opacity, stroke: nil, strokeWidth: 0, data: []))
        }
        items.append(.text(e.label, at: SIMD2(sx + swatch + pad, cy + fontSize * 0.35), size: fontSize,
                           anchor: .start, rotation: 0, color: .black, bold: false))
    }
    return items
}
