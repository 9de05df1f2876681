// libFuzzer target: XYZ, multi-frame and extended XYZ, QM9 .xyz (XYZReader), with and
// without a requested property name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXYZ(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    withFuzzFile(data, size, extension: "xyz") { path in
        for m in try readMolecules(path) { precondition(m.atomCount > 0 && m.positions.count == m.atomCount) }
    }
    withFuzzFile(data, size, extension: "xyz") { path in
        // A property may hold several values.
        for m in try readMolecules(path, properties: ["energy", "U0"]) { precondition(m.properties.count >= 2) }
    }
    return 0
}
