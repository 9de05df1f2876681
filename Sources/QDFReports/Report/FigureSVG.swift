import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// The SVG backend of a Figure: a standalone `<svg>` element (well-formed XML), used
// inline in the HTML report.

/// Escapes text for XML character data and attribute values.
public func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // Control characters other than tab/newline are not allowed in XML 1.0.
            if c.value < 0x20 && c != "\t" && c != "\n" { out += "?" } else { out.unicodeScalars.append(c) }
        }
    }
    return out
}

/// A number for SVG coordinates: two decimals are plenty at point resolution.
@inline(__always)
func svgNumber(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    if r == r.rounded() { return String(Int(r)) }
    return String(format: "%.2f", r)
}

extension Figure {
    /// The figure as an SVG document fragment (`<svg xmlns=…>…</svg>`).
    public func svg() -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"figure\" id=\"\(xmlEscape(id))\" "
        out += "width=\"\(svgNumber(width))\" height=\"\(svgNumber(height))\" "
        out += "viewBox=\"0 0 \(svgNumber(width)) \(svgNumber(height))\" "
        out += "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        out += "<title>\(xmlEscape(title))</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(svgNumber(width))\" height=\"\(svgNumber(height))\" fill=\"#ffffff\"/>\n"
        var clipCount = 0
        func data(_ d: MarkData) -> String {
            d.map { " data-\($0.0)=\"\(xmlEscape($0.1))\"" }.joined()
        }
        func emit(_ item: FigureItem) {
            switch item {
            case let .polyline(points, color, width, dash, d):
                guard points.count >= 2 else { return }
                out += "<polyline fill=\"none\" stroke=\"\(color.css)\" stroke-width=\"\(svgNumber(width))\""
                if !dash.isEmpty { out += " stroke-dasharray=\"\(dash.map(svgNumber).joined(separator: " "))\"" }
                out += " stroke-linejoin=\"round\"\(data(d)) points=\""
                for (i, p) in points.enumerated() {
                    if i > 0 { out += " " }
                    out += svgNumber(p.x); out += ","; out += svgNumber(p.y)
                }
                out += "\"/>\n"
            case let .rect(x, y, w, h, fill, opacity, stroke, sw, d):
                out += "<rect x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" width=\"\(svgNumber(w))\" height=\"\(svgNumber(h))\""
                out += " fill=\"\(fill?.css ?? "none")\""
                if opacity < 1 { out += " fill-opacity=\"\(svgNumber(opacity))\"" }
                if let s = stroke { out += " stroke=\"\(s.css)\" stroke-width=\"\(svgNumber(sw))\"" }
                out += "\(data(d))/>\n"
            case let .circle(c, r, fill, opacity, d):
                out += "<circle cx=\"\(svgNumber(c.x))\" cy=\"\(svgNumber(c.y))\" r=\"\(svgNumber(r))\" fill=\"\(fill.css)\""
                if opacity < 1 { out += " fill-opacity=\"\(svgNumber(opacity))\"" }
                out += "\(data(d))/>\n"
            case let .text(s, at, size, anchor, rotation, color, bold):
                out += "<text x=\"\(svgNumber(at.x))\" y=\"\(svgNumber(at.y))\" font-size=\"\(svgNumber(size))\""
                if anchor != .start { out += " text-anchor=\"\(anchor.rawValue)\"" }
                if rotation != 0 { out += " transform=\"rotate(\(svgNumber(rotation)) \(svgNumber(at.x)) \(svgNumber(at.y)))\"" }
                if color != .black { out += " fill=\"\(color.css)\"" }
                if bold { out += " font-weight=\"bold\"" }
                out += ">\(xmlEscape(s))</text>\n"
            case let .clipped(x, y, w, h, items):
                clipCount += 1
                let cid = "\(id)-clip\(clipCount)"
                out += "<clipPath id=\"\(xmlEscape(cid))\"><rect x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" "
                out += "width=\"\(svgNumber(w))\" height=\"\(svgNumber(h))\"/></clipPath>\n"
                out += "<g clip-path=\"url(#\(xmlEscape(cid)))\">\n"
                items.forEach(emit)
                out += "</g>\n"
            case let .group(name, d, items):
                out += "<g class=\"\(xmlEscape(name))\"\(data(d))>\n"
                items.forEach(emit)
                out += "</g>\n"
            }
        }
        items.forEach(emit)
        out += "</svg>\n"
        return out
    }
}
