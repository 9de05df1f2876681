import QuantumDeepField
// A safe, minimal unpickler: enough of Python's pickle format (protocols 2 to 5) to
// read a PyTorch state_dict and a str → int dictionary, and nothing more. It never
// executes anything: the only globals it accepts are collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 and the torch.*Storage types, and each one is
// interpreted here (an empty dictionary, a tensor reference, a storage type).
// Any other global or opcode is refused with a message naming it.

/// A torch storage class named in a pickle (torch.FloatStorage, torch.LongStorage, ...).
public struct TorchStorageType: Sendable, Equatable {
    /// The class name, e.g. "FloatStorage".
    public let name: String
    /// The element type, e.g. "float32".
    public let dtype: String
    public let elementSize: Int

    public var isFloat32: Bool { name == "FloatStorage" }

    static let known: [String: (String, Int)] = [
        "FloatStorage": ("float32", 4), "DoubleStorage": ("float64", 8), "HalfStorage": ("float16", 2),
        "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
        "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
        "BoolStorage": ("bool", 1), "ComplexFloatStorage": ("complex64", 8),
        "ComplexDoubleStorage": ("complex128", 16),
    ]

    public init?(name: String) {
        guard let (dtype, size) = Self.known[name] else { return nil }
        self.name = name
        self.dtype = dtype
        self.elementSize = size
    }
}

/// A storage named by a persistent id: its key in the file, type, element count, and
/// (legacy format only) the part of a larger root storage it views.
public struct TorchStorageReference: Sendable, Equatable {
    public var key: String
    public var type: TorchStorageType
    /// Elements in the stored (root) storage.
    public var count: Int
    /// For a view into the root storage: its first element and element count.
    public var viewOffset: Int = 0
    public var viewCount: Int
}

/// The arguments of torch._utils._rebuild_tensor_v2: a strided view of a storage.
public struct TorchTensorReference: Sendable, Equatable {
    public var storage: TorchStorageReference
    public var storageOffset: Int
    public var shape: [Int]
    public var strides: [Int]
}

/// A list or dictionary: reference types, because pickles fill them after memoizing them.
public final class PickleList {
    public var items: [PickleValue] = []
}

public final class PickleDictionary {
    public enum Key: Hashable, Sendable { case string(String), int(Int) }
    /// Entries in insertion order (an OrderedDict's order).
    public private(set) var entries: [(key: Key, value: PickleValue)] = []
    private var index: [Key: Int] = [:]
    public let isOrderedDict: Bool

    init(ordered: Bool) { isOrderedDict = ordered }

    func set(_ key: Key, _ value: PickleValue) {
        if let i = index[key] { entries[i].value = value } else {
            index[key] = entries.count
            entries.append((key, value))
        }
    }

    func removeAll() { entries.removeAll(); index.removeAll() }

    public subscript(key: String) -> PickleValue? { index[.string(key)].map { entries[$0].value } }
}

/// The globals the unpickler accepts.
public enum PickleGlobal: Sendable, Equatable {
    case orderedDict
    case rebuildTensorV2
    case storageType(TorchStorageType)
}

public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, as LONG1 stores it (little-endian two's complement).
    case bigInt([UInt8])
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dictionary(PickleDictionary)
    case global(PickleGlobal)
    case storage(TorchStorageReference)
    case tensor(TorchTensorReference)

    /// A short description of the value's kind, for messages.
    public var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .string: return "str"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dictionary(let d): return d.isOrderedDict ? "OrderedDict" : "dict"
        case .global: return "global"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// Reads one pickle from `bytes` starting at `position`; `position` ends just after its
/// STOP opcode, so several pickles in a row (the legacy torch.save format) can be read.
public struct Unpickler {
    let bytes: [UInt8]
    let path: String
    public private(set) var position: Int
    /// Turns a persistent id (BINPERSID) into a value; nil refuses persistent ids.
    var persistentLoad: ((PickleValue) throws -> PickleValue)?

    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var opcodeStart = 0
    /// Every list and dictionary built by the current `load`: a hostile pickle can make one
    /// contain itself (APPEND of a memoized list to itself), a reference cycle that would
    /// never be freed; `load` refuses such values and empties these containers.
    private let created = CreatedContainers()

    /// Bounds for hostile input: the deepest stack and the largest memo accepted.
    static let maxStack = 1 << 20

    public init(bytes: [UInt8], position: Int = 0, path: String,
                persistentLoad: ((PickleValue) throws -> PickleValue)? = nil) {
        self.bytes = bytes
        self.position = position
        self.path = path
        self.persistentLoad = persistentLoad
    }

    func fail(_ message: String) -> QDFError {
        QDFError("pickle at byte \(opcodeStart): \(message)", file: path)
    }

    // MARK: - Reading the byte stream

    private mutating func take(_ n: Int) throws -> Range<Int> {
        guard n >= 0, n <= bytes.count - position else {
            throw fail("the file ends early (needs \(n) more bytes at byte \(position), has \(bytes.count - position)): truncated?")
        }
        defer { position += n }
        return position..<(position + n)
    }

    private mutating func byte() throws -> UInt8 { bytes[try take(1).lowerBound] }

    private mutating func littleEndian(_ n: Int) throws -> UInt64 {
        let r = try take(n)
        var v: UInt64 = 0
        for (i, b) in bytes[r].enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0a), end - position < 256 else {
            throw fail("a GLOBAL opcode's name is not terminated by a newline")
        }
        let r = try take(end - position + 1)
        return String(decoding: bytes[r.lowerBound..<(r.upperBound - 1)], as: UTF8.self)
    }

    private mutating func utf8(_ n: Int) throws -> String {
        let r = try take(n)
        guard let s = String(validating: bytes[r], as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
        return s
    }

    // MARK: - The stack

    private mutating func push(_ v: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw fail("the pickle stack grows beyond \(Self.maxStack) items") }
        stack.append(v)
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("the pickle stack is empty (malformed pickle)") }
        if let m = marks.last, stack.count < m { throw fail("an opcode reaches below a MARK (malformed pickle)") }
        return v
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack (malformed pickle)") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func memoize(_ index: Int) throws {
        guard let top = stack.last else { throw fail("nothing on the stack to memoize") }
        guard memo.count < Self.maxStack else { throw fail("the pickle memo grows beyond \(Self.maxStack) items") }
        memo[index] = top
    }

    private mutating func recall(_ index: Int) throws {
        guard let v = memo[index] else { throw fail("memo entry \(index) is read before it is written") }
        try push(v)
    }

    private func key(_ v: PickleValue) throws -> PickleDictionary.Key {
        switch v {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        default: throw fail("a dictionary key is a \(v.kind); only str and int keys are supported")
        }
    }

    private func dictionaryTarget(_ v: PickleValue) throws -> PickleDictionary {
        guard case .dictionary(let d) = v else { throw fail("SETITEM on a \(v.kind), not a dictionary") }
        return d
    }

    // MARK: - Globals and calls

    /// The whitelist. Anything else is refused by name and never looked up, let alone run.
    private func global(module: String, name: String) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .global(.orderedDict)
        case ("torch._utils", "_rebuild_tensor_v2"): return .global(.rebuildTensorV2)
        default:
            if module == "torch", let t = TorchStorageType(name: name) { return .global(.storageType(t)) }
            throw fail("refusing the global '\(module).\(name)': only collections.OrderedDict, "
                + "torch._utils._rebuild_tensor_v2 and torch storage types are allowed "
                + "(expected a state_dict, as torch.save(model.state_dict(), path) writes it, or a str → int dictionary)")
        }
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable else { throw fail("REDUCE calls a \(callable.kind), not an allowed global") }
        guard case .tuple(let a) = args else { throw fail("REDUCE's arguments are a \(args.kind), not a tuple") }
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail("OrderedDict is called with arguments; only OrderedDict() is supported") }
            return .dictionary(created.dictionary(ordered: true))
        case .storageType(let t):
            throw fail("torch.\(t.name) is called directly; storages must come through persistent ids")
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else {
                throw fail("_rebuild_tensor_v2 gets \(a.count) arguments, expected 6 or 7")
            }
            guard case .storage(let s) = a[0] else { throw fail("_rebuild_tensor_v2's storage is a \(a[0].kind)") }
            guard case .int(let offset) = a[1], offset >= 0 else { throw fail("_rebuild_tensor_v2's storage offset is not a non-negative int") }
            let shape = try ints(a[2], "size")
            let strides = try ints(a[3], "stride")
            guard shape.count == strides.count else {
                throw fail("tensor size \(shape) and stride \(strides) have different lengths")
            }
            return .tensor(TorchTensorReference(storage: s, storageOffset: offset, shape: shape, strides: strides))
        }
    }

    private func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
        guard case .tuple(let items) = v else { throw fail("tensor \(what) is a \(v.kind), not a tuple") }
        return try items.map {
            guard case .int(let i) = $0, i >= 0 else { throw fail("tensor \(what) holds a value that is not a non-negative int") }
            return i
        }
    }

    // MARK: - The opcode loop

    /// Reads opcodes up to STOP and returns the pickled value. A value that contains itself
    /// is refused (and its cycles broken, so that nothing leaks).
    public mutating func load() throws -> PickleValue {
        created.reset()
        defer { created.reset() }
        do {
            let v = try loadOpcodes()
            if let problem = created.structureProblem(v) {
                created.breakCycles()
                throw fail(problem)
            }
            return v
        } catch {
            // A partial value may hold cycles too.
            stack.removeAll(); memo.removeAll()
            created.breakCycles()
            throw error
        }
    }

    private mutating func loadOpcodes() throws -> PickleValue {
        stack.removeAll()
        marks.removeAll()
        memo.removeAll()
        while true {
            opcodeStart = position
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let p = try byte()
                guard p >= 2, p <= 5 else { throw fail("pickle protocol \(p); protocols 2 to 5 are supported") }
            case 0x95: // FRAME (protocol 4+): only a length hint
                _ = try take(8)
            case 0x2e: // STOP
                guard marks.isEmpty, stack.count == 1 else { throw fail("STOP with \(stack.count) values on the stack (malformed pickle)") }
                return stack[0]
            case 0x28: // MARK
                marks.append(stack.count)
            case 0x29: try push(.tuple([])) // EMPTY_TUPLE
            case 0x74: try push(.tuple(try popToMark())) // TUPLE
            case 0x85: try push(.tuple([try pop()])) // TUPLE1
            case 0x86: // TUPLE2
                let b = try pop(), a = try pop()
                try push(.tuple([a, b]))
            case 0x87: // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(.tuple([a, b, c]))
            case 0x5d: try push(.list(created.list())) // EMPTY_LIST
            case 0x6c: // LIST
                let l = created.list()
                l.items = try popToMark()
                try push(.list(l))
            case 0x61: // APPEND
                let v = try pop()
                guard case .list(let l)? = stack.last else { throw fail("APPEND to something that is not a list") }
                l.items.append(v)
            case 0x65: // APPENDS
                let items = try popToMark()
                guard case .list(let l)? = stack.last else { throw fail("APPENDS to something that is not a list") }
                l.items += items
            case 0x7d: try push(.dictionary(created.dictionary(ordered: false))) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
                let d = created.dictionary(ordered: false)
                for i in stride(from: 0, to: items.count, by: 2) { d.set(try key(items[i]), items[i + 1]) }
                try push(.dictionary(d))
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                guard let top = stack.last else { throw fail("SETITEM without a dictionary") }
                try dictionaryTarget(top).set(try key(k), v)
            case 0x75: // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                guard let top = stack.last else { throw fail("SETITEMS without a dictionary") }
                let d = try dictionaryTarget(top)
                for i in stride(from: 0, to: items.count, by: 2) { d.set(try key(items[i]), items[i + 1]) }
            case 0x71: try memoize(Int(try byte())) // BINPUT
            case 0x72: try memoize(Int(try littleEndian(4))) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x68: try recall(Int(try byte())) // BINGET
            case 0x6a: try recall(Int(try littleEndian(4))) // LONG_BINGET
            case 0x4a: try push(.int(Int(Int32(truncatingIfNeeded: try littleEndian(4))))) // BININT
            case 0x4b: try push(.int(Int(try byte()))) // BININT1
            case 0x4d: try push(.int(Int(try littleEndian(2)))) // BININT2
            case 0x8a: // LONG1
                let n = Int(try byte())
                let r = try take(n)
                if n == 0 {
                    try push(.int(0))
                } else if n <= 8 {
                    var v: UInt64 = 0
                    for (i, b) in bytes[r].enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                    if n < 8 && bytes[r.upperBound - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) } // sign-extend
                    try push(.int(Int(Int64(bitPattern: v))))
                } else {
                    try push(.bigInt(Array(bytes[r])))
                }
            case 0x4e: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x58: try push(.string(try utf8(Int(try littleEndian(4))))) // BINUNICODE
            case 0x8c: try push(.string(try utf8(Int(try byte())))) // SHORT_BINUNICODE
            case 0x8d: // BINUNICODE8
                let n = try littleEndian(8)
                guard n <= UInt64(bytes.count) else { throw fail("a string of \(n) bytes is longer than the file") }
                try push(.string(try utf8(Int(n))))
            case 0x63: // GLOBAL
                let module = try line()
                let name = try line()
                try push(try global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let n) = name, case .string(let m) = module else {
                    throw fail("STACK_GLOBAL with names that are not strings")
                }
                try push(try global(module: m, name: n))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x51: // BINPERSID
                let pid = try pop()
                guard let load = persistentLoad else {
                    throw fail("a persistent id (BINPERSID) in a pickle that should hold plain data")
                }
                try push(try load(pid))
            case 0x62: // BUILD: only the attributes torch sets on a state_dict (its _metadata)
                let state = try pop()
                guard case .dictionary(let target)? = stack.last, target.isOrderedDict else {
                    throw fail("BUILD on a \(stack.last?.kind ?? "empty stack"); only a state_dict's OrderedDict may get attributes")
                }
                guard case .dictionary = state else { throw fail("BUILD with a \(state.kind) state; expected a dict of attributes") }
            default:
                let printable = (0x21...0x7e).contains(op) ? " ('\(Character(Unicode.Scalar(op)))')" : ""
                throw fail(String(format: "unsupported opcode 0x%02x", op) + printable
                    + ": this reader accepts only what a state_dict or a str → int dictionary needs")
            }
        }
    }
}

/// The containers an Unpickler built, to detect and break reference cycles.
final class CreatedContainers {
    private var lists: [PickleList] = []
    private var dictionaries: [PickleDictionary] = []

    func list() -> PickleList { let l = PickleList(); lists.append(l); return l }
    func dictionary(ordered: Bool) -> PickleDictionary {
        let d = PickleDictionary(ordered: ordered); dictionaries.append(d); return d
    }
    func reset() { lists.removeAll(); dictionaries.removeAll() }

    /// Empties every container built, which breaks any cycle among them.
    func breakCycles() {
        for l in lists { l.items.removeAll() }
        for d in dictionaries { d.removeAll() }
        reset()
    }

    /// The most values a structure may unfold to (tuples shared through the memo are
    /// counted each time they appear): state dicts have thousands.
    static let maxUnfoldedValues = 1 << 22

    /// Why `v` is refused: it reaches a container from inside itself, or unfolds to more than
    /// `maxUnfoldedValues` values; nil when it is fine (iterative depth-first search).
    func structureProblem(_ v: PickleValue) -> String? {
        if lists.isEmpty && dictionaries.isEmpty { return nil }
        let cycle = "the pickle holds a list or dict that contains itself; state dicts and orbital dictionaries never do"
        var steps = 0
        enum Step { case enter(PickleValue), leave(ObjectIdentifier) }
        var onPath = Set<ObjectIdentifier>(), done = Set<ObjectIdentifier>()
        var work: [Step] = [.enter(v)]
        while let step = work.popLast() {
            steps += 1
            if steps > Self.maxUnfoldedValues { return "the pickle unfolds to more than \(Self.maxUnfoldedValues) values" }
            switch step {
            case .leave(let id):
                onPath.remove(id); done.insert(id)
            case .enter(let value):
                switch value {
                case .tuple(let items):
                    for x in items { work.append(.enter(x)) }
                case .list(let l):
                    let id = ObjectIdentifier(l)
                    if onPath.contains(id) { return cycle }
                    if done.contains(id) { continue }
                    onPath.insert(id); work.append(.leave(id))
                    for x in l.items { work.append(.enter(x)) }
                case .dictionary(let d):
                    let id = ObjectIdentifier(d)
                    if onPath.contains(id) { return cycle }
                    if done.contains(id) { continue }
                    onPath.insert(id); work.append(.leave(id))
                    for e in d.entries { work.append(.enter(e.value)) }
                default:
                    break
                }
            }
        }
        return nil
    }
}
