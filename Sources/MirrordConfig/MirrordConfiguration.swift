import MirrorCore

/// The whole configuration of mirrord, as `mirrord.conf` and its `MIRRORD_*` overrides give it,
/// already in the shapes its consumers take: the backend choice, the machine's options (which the
/// service maps onto the backend's own), the engine's policy, the spare on another host and the
/// service's own test fault.
///
/// The defaults are those of ``MachineOptions`` and ``DuplexPolicy``, and
/// `config/mirrord.conf` writes them out; a test keeps the two equal. Which key sets which value
/// is said once, in ``ConfigurationKeys/all``.
package struct MirrordConfiguration: Sendable, Hashable {
    /// The backends this build knows (`hardware.backend`).
    package enum Backend: String, Sendable, Hashable, CaseIterable {
        /// The emulated active/spare pair with CPU threads and a DMA engine.
        case emulated
        /// The same machine, but the CPUs' writes are tracked by the real MMU: userfaultfd
        /// write-protect (async) and PAGEMAP_SCAN (Linux 6.7+). `[mmu]` does not apply.
        case uffd
        /// The classic userspace baseline: `mprotect` and a SIGSEGV handler. Slow, and it
        /// fails (cleanly) past `vm.max_map_count` scattered written pages. `[mmu]` does not apply.
        case mprotect

        /// Whether the real MMU tracks writes (and the emulated MMU does not apply).
        package var usesRealMMU: Bool { self != .emulated }
    }

    /// `hardware.backend`.
    package var backend: Backend = .emulated
    /// `[memory]`, `[workload]`, `[mmu]`, `[tracking]`, `[dma]` (but `dual_write`) and
    /// `fault.flip_spare_bit` and the stalls: the shape of the machine.
    package var machine = MachineOptions()
    /// `[duplex]` and `dma.dual_write`: when the passes end and how DMA is treated.
    package var policy = DuplexPolicy()
    /// `fault.hang_after_pass`: after this pass the engine hangs (0: never), so that a watchdog can
    /// be seen to act.
    package var hangAfterPass: Int = 0
    /// `duplex.auto_reduplex`, `duplex.correctable_limit`, `duplex.correctable_window`: how the
    /// service answers module faults.
    package var faultTolerance = FaultTolerancePolicy()
    /// `fault.module`, `kind`, `frame`, `count`, `during`, `after`, `replace_after`: a module
    /// fault raised on purpose.
    package var faultDrill = FaultDrill()
    /// `control.socket`, `control.group`: the daemon's control socket.
    package var control = ControlOptions()
    /// `metrics.textfile`: where the metrics for node_exporter's textfile collector go (`""`: none).
    package var metricsTextfile = ""
    /// `remote.epoch`, `remote.staging`: how often an epoch is taken and how much it may hold, when
    /// the spare is on another host. Without an explicit `remote.staging`, a memory smaller than
    /// the default staging area gives its own size.
    package var replication = ReplicationPolicy()
    /// `memory.spare`, `remote.timeout`, `remote.release_log`: where the spare is (another host, or
    /// `""` for the local one) and how it is reached.
    package var remote = RemoteOptions()

    /// The built-in defaults.
    package init() {}

    /// Frames in each module.
    package var frames: Int { machine.memorySize / machine.frameSize }

    /// The value of `key` (`section.key`, one of ``ConfigurationKeys/all``) as the file would
    /// write it, for messages that say what a reload changed.
    package func value(forKey key: String) -> String {
        guard let entry = ConfigurationKeys.byName[key] else { preconditionFailure("unknown configuration key \(key)") }
        return entry.value(in: self)
    }

    /// The keys whose values differ between this configuration and `other`, in file order.
    package func changedKeys(comparedTo other: MirrordConfiguration) -> [String] {
        ConfigurationKeys.all.filter { $0.value(in: self) != $0.value(in: other) }.map(\.name)
    }

    /// Whether a running daemon can apply a new value of `key` without a restart: the `[duplex]`
    /// keys take effect at the next pass (or the next duplex); the others shape the machine.
    package static func isReloadable(_ key: String) -> Bool {
        ConfigurationKeys.byName[key]?.reloadable ?? false
    }

    /// This configuration with the reloadable keys of `candidate` applied; the others keep their
    /// values until a restart.
    package func applyingReloadable(from candidate: MirrordConfiguration) -> MirrordConfiguration {
        var applied = self
        for key in ConfigurationKeys.all where key.reloadable { key.copy(candidate, &applied) }
        return applied
    }
}
