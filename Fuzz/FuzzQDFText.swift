// libFuzzer target: the QDF text molecule format (QDFTextReader through readMolecules).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQDFText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    withFuzzFile(data, size, extension: "txt") { path in
        for m in try readMolecules(path) { precondition(m.atomCount > 0 && m.positions.count == m.atomCount) }
    }
    return 0
}
