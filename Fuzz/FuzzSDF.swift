// libFuzzer target: MDL V2000 SDF/MOL (SDFReader), with and without a requested data item.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSDF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    withFuzzFile(data, size, extension: "sdf") { path in
        for m in try readMolecules(path) { precondition(m.atomCount > 0 && m.positions.count == m.atomCount) }
    }
    withFuzzFile(data, size, extension: "sdf") { path in
        // A data item may hold several values.
        for m in try readMolecules(path, properties: ["energy"]) { precondition(m.properties.count >= 1) }
    }
    return 0
}
