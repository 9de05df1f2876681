import CCairo
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// The cairo backend of a Figure: the same items the SVG backend draws, rendered to a
// PNG file. Figures are laid out in points; `scale` sets pixels per point (the report's
// 600 × 400 pt figures at scale 3 give 1800 × 1200 px: 6 × 4 inches at 300 dpi).

extension Figure {
    /// Renders the figure to a PNG file, written atomically.
    public func writePNG(path: String, scale: Double = 3) throws {
        let w = Int32((width * scale).rounded()), h = Int32((height * scale).rounded())
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h) else {
            throw QDFError("cairo could not create a \(w)×\(h) image", file: path)
        }
        defer { cairo_surface_destroy(surface) }
        guard let cr = cairo_create(surface) else { throw QDFError("cairo could not create a context", file: path) }
        defer { cairo_destroy(cr) }
        cairo_scale(cr, scale, scale)
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        for item in items { draw(item, cr) }
        cairo_surface_flush(surface)
        let status = cairo_status(cr)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw QDFError("cairo drawing failed: \(String(cString: cairo_status_to_string(status)))", file: path)
        }
        // cairo writes PNG through a callback; collect the bytes, then write atomically.
        final class Sink { var data = Data() }
        let sink = Sink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        let st = cairo_surface_write_to_png_stream(surface, { closure, bytes, length in
            guard let closure, let bytes else { return CAIRO_STATUS_WRITE_ERROR }
            let s = Unmanaged<Sink>.fromOpaque(closure).takeUnretainedValue()
            s.data.append(bytes, count: Int(length))
            return CAIRO_STATUS_SUCCESS
        }, unmanaged.toOpaque())
        guard st == CAIRO_STATUS_SUCCESS else {
            throw QDFError("cairo could not encode the PNG: \(String(cString: cairo_status_to_string(st)))", file: path)
        }
        try writeAtomically(sink.data, to: path)
    }

    private func setColor(_ cr: OpaquePointer, _ c: RGB, _ alpha: Double = 1) {
        cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha)
    }

    private func draw(_ item: FigureItem, _ cr: OpaquePointer) {
        switch item {
        case let .polyline(points, color, width, dash, _):
            guard points.count >= 2 else { return }
            cairo_new_path(cr)
            cairo_move_to(cr, points[0].x, points[0].y)
            for p in points.dropFirst() { cairo_line_to(cr, p.x, p.y) }
            setColor(cr, color)
            cairo_set_line_width(cr, width)
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
            dash.withUnsafeBufferPointer { cairo_set_dash(cr, $0.baseAddress, Int32($0.count), 0) }
            cairo_stroke(cr)
            cairo_set_dash(cr, nil, 0, 0)
        case let .rect(x, y, w, h, fill, opacity, stroke, sw, _):
            cairo_new_path(cr)
            cairo_rectangle(cr, x, y, w, h)
            if let f = fill {
                setColor(cr, f, opacity)
                if stroke != nil { cairo_fill_preserve(cr) } else { cairo_fill(cr) }
            }
            if let s = stroke {
                setColor(cr, s)
                cairo_set_line_width(cr, sw)
                cairo_stroke(cr)
            }
            cairo_new_path(cr)
        case let .circle(c, r, fill, opacity, _):
            cairo_new_path(cr)
            cairo_arc(cr, c.x, c.y, r, 0, 2 * Double.pi)
            setColor(cr, fill, opacity)
            cairo_fill(cr)
        case let .text(s, at, size, anchor, rotation, color, bold):
            cairo_save(cr)
            cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                                   bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
            cairo_set_font_size(cr, size)
            cairo_translate(cr, at.x, at.y)
            if rotation != 0 { cairo_rotate(cr, rotation * Double.pi / 180) }
            var ext = cairo_text_extents_t()
            cairo_text_extents(cr, s, &ext)
            let dx: Double = anchor == .start ? 0 : anchor == .middle ? -ext.x_advance / 2 : -ext.x_advance
            cairo_move_to(cr, dx, 0)
            setColor(cr, color)
            cairo_show_text(cr, s)
            cairo_restore(cr)
        case let .clipped(x, y, w, h, items):
            cairo_save(cr)
            cairo_new_path(cr)
            cairo_rectangle(cr, x, y, w, h)
            cairo_clip(cr)
            for i in items { draw(i, cr) }
            cairo_restore(cr)
        case let .group(_, _, items):
            for i in items { draw(i, cr) }
        }
    }
}

/// Decodes a PNG file with cairo and returns its size in pixels (nil if it does not decode).
public func pngSize(path: String) -> (width: Int, height: Int)? {
    guard let s = cairo_image_surface_create_from_png(path) else { return nil }
    defer { cairo_surface_destroy(s) }
    guard cairo_surface_status(s) == CAIRO_STATUS_SUCCESS else { return nil }
    return (Int(cairo_image_surface_get_width(s)), Int(cairo_image_surface_get_height(s)))
}
