import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

@Suite("Molecule readers")
struct ReaderTests {
    func expectError(_ path: String, line: Int?, contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try readMolecules(path)
            Issue.record("expected an error for \(path)", sourceLocation: sourceLocation)
        } catch let e as QDFError {
            #expect(e.file == path, sourceLocation: sourceLocation)
            #expect(e.line == line, "error: \(e)", sourceLocation: sourceLocation)
            #expect(e.message.contains(text), "error: \(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("QDF text format: one and several properties, optional property line, CRLF, BOM, no final newline")
    func qdfText() throws {
        let dir = try TemporaryDirectory()
        let a = try dir.write("a.txt", "mol1\nC 0 0 0\nH 0 0 1.09\n-17.5\n\n\nmol2\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n-9.2\n")
        let ms = try readMolecules(a)
        #expect(ms.count == 2)
        #expect(ms[0].id == "mol1" && ms[0].atomicNumbers == [6, 1] && ms[0].properties == [-17.5])
        #expect(ms[1].positions[1] == SIMD3(0.76, 0.59, 0) && ms[1].electronCount == 10)
        let b = try dir.write("b.txt", "\u{FEFF}x\r\nN 0 0 0\r\nH 1 0 0\r\n-1.5 2.5\r\n\r\ny\r\nC 0 0 0\r\nC 1.2 0 0\r\n0.5 0.25")
        let mb = try readMolecules(b)
        #expect(mb.map(\.id) == ["x", "y"] && mb[1].properties == [0.5, 0.25])
        let c = try dir.write("c.txt", "p\nC 0 0 0   \nH 0 0 1.1\n\nq\nH 0 0 0\nH 0 0 0.74\n")
        let mc = try readMolecules(c)
        #expect(mc.allSatisfy { $0.properties.isEmpty })
    }

    @Test("QDF text format: broken files give file:line errors")
    func qdfTextErrors() throws {
        let dir = try TemporaryDirectory()
        expectError(try dir.write("e1.txt", "m\nC 0 0 0\nXx 1 0 0\n-1\n"), line: 3, contains: "unknown element symbol 'Xx'")
        expectError(try dir.write("e2.txt", "m\nC 0 0\n-1\n"), line: 2, contains: "expected 'Element x y z'")
        expectError(try dir.write("e3.txt", "m\nC 0 0 nan\n-1\n"), line: 2, contains: "not a finite number")
        expectError(try dir.write("e4.txt", "m\nC 0 0 0\nH 1 0 0\n-1 abc\n"), line: 4, contains: "property value")
        expectError(try dir.write("e5.txt", "m\nC 0 0 0\nC 0 0 0\n-1\n"), line: 1, contains: "same position")
        expectError(try dir.write("e6.txt", "m\nC 0 0 0\n-1\nH 0 0 1\n"), line: 4, contains: "after the property line")
        expectError(try dir.write("e7.txt", "m\nC 0 0 0\nH 0 0 1\n-1\n\nn\nC 0 0 0\nH 0 0 1\n-1 2\n"), line: 9, contains: "earlier molecules have 1")
        expectError(try dir.write("e8.txt", "m\n\n"), line: 1, contains: "no atoms")
        expectError(try dir.write("e9.txt", "C 0 0 0\nH 0 0 1\n"), line: 1, contains: "expected a molecule id line")
        expectError(dir.file("missing.txt"), line: nil, contains: "cannot open")
    }

    @Test("XYZ: single and multi-frame, ids from the comment line, extra columns")
    func xyz() throws {
        let dir = try TemporaryDirectory()
        let a = try dir.write("water.xyz", "3\n\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n")
        let m = try readMolecules(a)
        #expect(m.count == 1 && m[0].id == "water" && m[0].atomicNumbers == [8, 1, 1])
        let b = try dir.write("multi.xyz", "2\nfirst\nH 0 0 0\nH 0 0 0.74\n3\n  second molecule \nC 0 0 0 0.1\nO 1.2 0 0 -0.1\n8 -1.2 0 0 0\n")
        let mb = try readMolecules(b)
        #expect(mb.map(\.id) == ["first", "second molecule"])
        #expect(mb[1].atomicNumbers == [6, 8, 8])
    }

    @Test("XYZ: broken files give file:line errors")
    func xyzErrors() throws {
        let dir = try TemporaryDirectory()
        expectError(try dir.write("e1.xyz", "two\nc\nH 0 0 0\n"), line: 1, contains: "number of atoms")
        expectError(try dir.write("e2.xyz", "3\nc\nH 0 0 0\nH 0 0 1\n"), line: 4, contains: "after 2 of 3 atoms")
        expectError(try dir.write("e3.xyz", "2\nc\nH 0 0 0\nQq 0 0 1\n"), line: 4, contains: "unknown element")
        expectError(try dir.write("e4.xyz", "1\n"), line: 1, contains: "comment line")
    }

    @Test("Elements: the whole periodic table, case-insensitive")
    func elements() {
        #expect(Element.atomicNumber("C") == 6 && Element.atomicNumber("cl") == 17 && Element.atomicNumber("OG") == 118)
        #expect(Element.atomicNumber("X") == nil)
        #expect(Element.symbols.count == 119)
        #expect(Molecule(id: "e", atomicNumbers: [6, 6, 1, 1, 1, 1, 1, 1, 8], positions: Array(repeating: .zero, count: 9)).formula == "C2H6O")
    }
}
