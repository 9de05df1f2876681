import Foundation

// Numbers as the published QDF files print them: Python's repr of a float.

/// Python's repr of a float: the shortest digits that round-trip (as Swift's description),
/// in positional notation for 1e-4 ≤ |x| < 1e16 and "d.ddde-XX" otherwise.
public func pythonRepr(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
    // Digits and decimal exponent from Swift's shortest representation ("123.45", "1.5e-05").
    let d = abs(x).description.utf8
    var digits = [UInt8]()
    digits.reserveCapacity(20)
    var pointAt = -1, expPart = 0, expSign = 1, inExp = false
    for c in d {
        if inExp {
            if c == UInt8(ascii: "-") { expSign = -1 } else if c != UInt8(ascii: "+") { expPart = expPart * 10 + Int(c - 48) }
        } else if c == UInt8(ascii: ".") { pointAt = digits.count }
        else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { inExp = true }
        else { digits.append(c) }
    }
    let intDigits = pointAt >= 0 ? pointAt : digits.count
    var lead = 0
    while lead < digits.count - 1 && digits[lead] == UInt8(ascii: "0") { lead += 1 }
    var end = digits.count
    while end - lead > 1 && digits[end - 1] == UInt8(ascii: "0") { end -= 1 }
    let ds = digits[lead..<end]
    // The value is 0.ds × 10^point: `point` digits stand before the decimal point.
    let point = intDigits - lead + expSign * expPart
    let sci = point - 1
    var out = [UInt8]()
    out.reserveCapacity(26)
    if x < 0 { out.append(UInt8(ascii: "-")) }
    if sci < -4 || sci >= 16 {
        out.append(ds.first!)
        if ds.count > 1 { out.append(UInt8(ascii: ".")); out.append(contentsOf: ds.dropFirst()) }
        out.append(UInt8(ascii: "e")); out.append(sci < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        let a = abs(sci)
        if a < 10 { out.append(UInt8(ascii: "0")) }
        out.append(contentsOf: String(a).utf8)
    } else if point <= 0 {
        out.append(UInt8(ascii: "0")); out.append(UInt8(ascii: "."))
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -point))
        out.append(contentsOf: ds)
    } else if point >= ds.count {
        out.append(contentsOf: ds)
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: point - ds.count))
        out.append(UInt8(ascii: ".")); out.append(UInt8(ascii: "0"))
    } else {
        out.append(contentsOf: ds.prefix(point)); out.append(UInt8(ascii: "."))
        out.append(contentsOf: ds.dropFirst(point))
    }
    return String(decoding: out, as: UTF8.self)
}
