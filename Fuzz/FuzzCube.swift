// libFuzzer target: Gaussian cube files (CubeFile.read).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCube(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    withFuzzFile(data, size, extension: "cube") { path in
        let c = try CubeFile.read(path: path)
        precondition(c.values.count == c.grid.pointCount)
    }
    return 0
}
