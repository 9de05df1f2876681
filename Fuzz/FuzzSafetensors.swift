// libFuzzer target: safetensors model files (SafetensorsFile.parse), round-tripped when accepted.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let d = Data(bytes: data, count: size)
    fuzzBytes {
        let f = try SafetensorsFile.parse(d)
        _ = try SafetensorsFile.parse(f.serialized())
    }
    return 0
}
