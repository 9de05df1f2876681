import QuantumDeepField
import CCairo
import QDFFormats
import QDFDensity

/// Versions of the system libraries linked in (for `qdf info`).
public enum SystemLibraries {
    public static var cairo: String { String(cString: cairo_version_string()) }
    public static var zlib: String { Gzip.zlibVersion }
}
