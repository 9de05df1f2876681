// libFuzzer target: torch.save files (zip and legacy pickle, TorchFile.parse) and the
// pickled orbital dictionary (TorchImport.parseOrbitalDictionary).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    fuzzBytes { _ = try TorchFile.parse(bytes) }
    fuzzBytes { _ = try TorchImport.parseOrbitalDictionary(bytes) }
    return 0
}
