// Errors that name the file, the line and the problem.

/// The one error type of QuantumDeepField: a message, with the file and the 1-based line
/// it concerns when there is one.
public struct QDFError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file the error concerns, or nil.
    public var file: String?
    /// The 1-based line in `file`, or nil.
    public var line: Int?
    /// The problem, without the file and line.
    public var message: String

    /// An error with `message`, optionally located at `file` and `line`.
    public init(_ message: String, file: String? = nil, line: Int? = nil) {
        self.message = message
        self.file = file
        self.line = line
    }

    /// "file:line: message", "file: message" or just the message (a line without a file is
    /// not shown).
    public var description: String {
        switch (file, line) {
        case let (f?, l?): return "\(f):\(l): \(message)"
        case let (f?, nil): return "\(f): \(message)"
        default: return message
        }
    }
}
