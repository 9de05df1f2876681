import CCairo
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// PNG figures drawn with cairo: a small canvas wrapper shared by LinePlot and HeatMap,
// PNG output through memory (so files are written atomically) and PNG decoding (tests).

/// An RGB colour, components in 0…1.
public struct PlotColor: Sendable, Equatable {
    public var r: Double, g: Double, b: Double
    public init(_ r: Double, _ g: Double, _ b: Double) { self.r = r; self.g = g; self.b = b }
    public static let black = PlotColor(0, 0, 0)
    public static let white = PlotColor(1, 1, 1)
    public static let gray = PlotColor(0.5, 0.5, 0.5)
    /// Matplotlib's "tab10" colours, for series.
    public static let palette: [PlotColor] = [
        PlotColor(0.122, 0.467, 0.706), PlotColor(1.000, 0.498, 0.055), PlotColor(0.173, 0.627, 0.173),
        PlotColor(0.839, 0.153, 0.157), PlotColor(0.580, 0.404, 0.741), PlotColor(0.549, 0.337, 0.294),
        PlotColor(0.890, 0.467, 0.761), PlotColor(0.498, 0.498, 0.498), PlotColor(0.737, 0.741, 0.133),
        PlotColor(0.090, 0.745, 0.812),
    ]
}

/// A cairo image surface with a context.
final class Canvas {
    let surface: OpaquePointer
    let cr: OpaquePointer
    let width: Int, height: Int

    init(width: Int, height: Int) throws {
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw QDFError("image size \(width)×\(height) is out of range (1…16384)")
        }
        surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height))
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS else {
            let msg = String(cString: cairo_status_to_string(cairo_surface_status(surface)))
            cairo_surface_destroy(surface)
            throw QDFError("cairo cannot create a \(width)×\(height) image: \(msg)")
        }
        cr = cairo_create(surface)
        self.width = width
        self.height = height
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        setColor(.white)
        cairo_paint(cr)
    }

    deinit {
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
    }

    func setColor(_ c: PlotColor, alpha: Double = 1) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha) }

    func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, width w: Double = 1, color: PlotColor = .black) {
        setColor(color)
        cairo_set_line_width(cr, w)
        cairo_move_to(cr, x0, y0)
        cairo_line_to(cr, x1, y1)
        cairo_stroke(cr)
    }

    enum Anchor { case left, center, right }

    /// Draws text with its baseline-centre (or left/right end) at (x, y); rotated by `angle` radians.
    func text(_ s: String, x: Double, y: Double, size: Double = 13, anchor: Anchor = .center,
              vertical: Double = 0.35, angle: Double = 0, color: PlotColor = .black) {
        cairo_set_font_size(cr, size)
        var ext = cairo_text_extents_t()
        cairo_text_extents(cr, s, &ext)
        let dx: Double = anchor == .left ? 0 : (anchor == .center ? -ext.x_advance / 2 : -ext.x_advance)
        cairo_save(cr)
        cairo_translate(cr, x, y)
        cairo_rotate(cr, angle)
        setColor(color)
        cairo_move_to(cr, dx, vertical * size)
        cairo_show_text(cr, s)
        cairo_restore(cr)
    }

    func textWidth(_ s: String, size: Double = 13) -> Double {
        cairo_set_font_size(cr, size)
        var ext = cairo_text_extents_t()
        cairo_text_extents(cr, s, &ext)
        return ext.x_advance
    }

    /// The image as PNG bytes (deflate-compressed, by cairo's libpng).
    func pngData() throws -> Data {
        cairo_surface_flush(surface)
        final class Sink { var data = Data() }
        let sink = Sink()
        let status = withExtendedLifetime(sink) { () -> cairo_status_t in
            cairo_surface_write_to_png_stream(surface, { closure, bytes, length in
                let s = Unmanaged<Sink>.fromOpaque(closure!).takeUnretainedValue()
                s.data.append(bytes!, count: Int(length))
                return CAIRO_STATUS_SUCCESS
            }, Unmanaged.passUnretained(sink).toOpaque())
        }
        guard status == CAIRO_STATUS_SUCCESS else {
            throw QDFError("cairo cannot encode the PNG: \(String(cString: cairo_status_to_string(status)))")
        }
        return sink.data
    }

    /// Writes the PNG atomically.
    func writePNG(path: String) throws { try writeAtomically(try pngData(), to: path) }
}

/// A decoded PNG image (ARGB, premultiplied as cairo stores it).
public struct PNGImage: Sendable {
    public var width: Int
    public var height: Int
    /// Row-major pixels 0xAARRGGBB.
    public var pixels: [UInt32]

    /// Decodes a PNG file with cairo (libpng).
    public static func read(path: String) throws -> PNGImage {
        guard FileManager.default.isReadableFile(atPath: path) else { throw QDFError("cannot open: no such readable file", file: path) }
        let s = cairo_image_surface_create_from_png(path)
        defer { cairo_surface_destroy(s) }
        let status = cairo_surface_status(s)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw QDFError("not a readable PNG: \(String(cString: cairo_status_to_string(status)))", file: path)
        }
        let w = Int(cairo_image_surface_get_width(s)), h = Int(cairo_image_surface_get_height(s))
        let stride = Int(cairo_image_surface_get_stride(s))
        guard let base = cairo_image_surface_get_data(s) else { throw QDFError("PNG has no pixel data", file: path) }
        var px = [UInt32](repeating: 0, count: w * h)
        let format = cairo_image_surface_get_format(s)
        for y in 0..<h {
            let row = UnsafeRawPointer(base + y * stride)
            for x in 0..<w {
                var p = row.load(fromByteOffset: 4 * x, as: UInt32.self)
                if format == CAIRO_FORMAT_RGB24 { p |= 0xFF00_0000 }
                px[y * w + x] = p
            }
        }
        return PNGImage(width: w, height: h, pixels: px)
    }

    public func pixel(x: Int, y: Int) -> (r: Int, g: Int, b: Int, a: Int) {
        let p = pixels[y * width + x]
        return (Int(p >> 16 & 0xFF), Int(p >> 8 & 0xFF), Int(p & 0xFF), Int(p >> 24))
    }
}

/// "Nice" tick positions covering [lo, hi] (about `target` of them).
public func niceTicks(_ lo: Double, _ hi: Double, target: Int = 6) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / Double(max(target, 1))
    let mag = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    var t = (lo / step).rounded(.up) * step
    var out = [Double]()
    while t <= hi + step * 1e-9 {
        out.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return out
}

/// A short label for a tick value.
func tickLabel(_ v: Double, step: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1e4 || a < 1e-3 { return String(format: "%.1e", v) }
    let decimals = max(0, min(6, Int((-log10(step)).rounded(.up))))
    return String(format: "%.\(decimals)f", v)
}
