/// A fault a memory module reports, as real hardware raises machine checks and ECC reports.
///
/// An uncorrectable error loses the data of one frame of that module; losing the module loses all
/// of it; a correctable error loses nothing, but many of them predict a failure.
public struct ModuleFault: Sendable, Hashable, CustomStringConvertible {
    /// The kinds of fault.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The whole module stopped answering.
        case lost
        /// One frame's data could not be corrected: it is lost on this module.
        case uncorrectable
        /// One frame needed correcting; nothing was lost.
        case correctable
    }

    /// What happened.
    public var kind: Kind
    /// The module it happened on, by its role when it was reported.
    public var module: ModuleRole
    /// The frame, for errors on one frame.
    public var frame: Int?

    /// A fault of `kind` on `module` (at `frame`, for errors on one frame).
    public init(_ kind: Kind, module: ModuleRole, frame: Int? = nil) {
        self.kind = kind
        self.module = module
        self.frame = kind == .lost ? nil : (frame ?? 0)
    }

    /// Whether the module can no longer be trusted with the machine's memory.
    public var isFatalToModule: Bool { kind != .correctable }

    /// For example `"uncorrectable error at frame 81234"`, `"module lost"`.
    public var what: String {
        switch kind {
        case .lost: "module lost"
        case .uncorrectable: "uncorrectable error at frame \(frame ?? 0)"
        case .correctable: "correctable error at frame \(frame ?? 0)"
        }
    }

    /// For example `"active module: uncorrectable error at frame 81234"`.
    public var description: String { "\(module.rawValue) module: \(what)" }
}
