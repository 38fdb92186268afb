import MirrorCore
import MirrordControl

extension ModuleFault {
    /// The fault a client asked to inject: its kind on its module, at its frame (a lost module
    /// has none).
    init(_ injection: FaultInjection) {
        let kind: Kind =
            switch injection.kind {
            case .lost: .lost
            case .uncorrectable: .uncorrectable
            case .correctable: .correctable
            }
        let module: ModuleRole =
            switch injection.module {
            case .active: .active
            case .spare: .spare
            }
        self.init(kind, module: module, frame: injection.frame)
    }
}
