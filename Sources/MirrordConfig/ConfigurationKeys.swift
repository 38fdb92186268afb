import MirrorCore

/// The table of every key of `mirrord.conf`, in the order of `config/mirrord.conf`, and the rules
/// that relate keys to each other. The loader reads keys in this order and checks each rule right
/// after the key it follows, so an error names the first thing wrong in the file's own order.
package enum ConfigurationKeys {
    /// Every key, in file order.
    package static let all: [ConfigurationKey] = [
        .choice("hardware.backend", \.backend),

        .size("memory.size", \.machine.memorySize, type: "a size from 64KiB to 1TiB, a whole number of 4KiB frames") {
            _ in
            64 << 10...(1 << 40)
        },
        .choice("memory.backing", \.machine.backing),
        .string("memory.state_dir", \.machine.stateDirectory, nonEmpty: true),
        .nbdURI("memory.spare", \.remote.spareURI),

        .integer(
            "duplex.threshold_frames", \.policy.thresholdFrames, type: "an integer from 0 to the frames of memory.size"
        ) {
            0...$0.frames
        },
        .integer("duplex.max_passes", \.policy.maxPasses, type: "an integer from 1 to 100000") { _ in 1...100_000 },
        .fraction("duplex.min_progress", \.policy.minProgress, below: 0..<1),
        .boolean("duplex.verify_in_blackout", \.policy.verifyFinalFramesInBlackout),
        .duration("duplex.blackout_target", \.policy.blackoutTargetNanoseconds, in: 0...10_000_000_000),
        .choice("duplex.convergence", \.policy.convergence),
        .percent("duplex.throttle_initial", \.policy.throttleInitial, in: 1...99),
        .percent("duplex.throttle_increment", \.policy.throttleIncrement, in: 1...99),
        .percent("duplex.throttle_max", \.policy.throttleMaximum, in: 1...99),
        .duration("duplex.max_duration", \.policy.maxDurationNanoseconds, in: 0...86_400_000_000_000),
        .boolean("duplex.auto_reduplex", \.faultTolerance.autoReduplex),
        .integer("duplex.correctable_limit", \.faultTolerance.correctableLimit, type: "an integer from 0 to 1000000") {
            _ in
            0...1_000_000
        },
        .duration(
            "duplex.correctable_window", \.faultTolerance.correctableWindowNanoseconds,
            in: 1_000_000_000...2_592_000_000_000_000),

        .choice("workload.pattern", \.machine.workload.pattern),
        .integer("workload.cpus", \.machine.workload.cpus, type: "an integer from 0 to 256") { _ in 0...256 },
        .rate("workload.rate", \.machine.workload.rate),
        .rateList("workload.cpu_rates", \.machine.workload.cpuRates),
        .patternList("workload.cpu_patterns", \.machine.workload.cpuPatterns),
        .seed("workload.seed", \.machine.workload.seed),
        .fraction("workload.hot_fraction", \.machine.workload.hotFraction, in: 0...1, excludingZero: true),
        .fraction("workload.hot_share", \.machine.workload.hotShare, in: 0...1),
        .size(
            "workload.store_size", \.machine.workload.storeSize, type: "a power of two from 8B to 4KiB",
            powerOfTwo: true
        ) {
            8...$0.machine.frameSize
        },
        .string("workload.trace", \.machine.workload.tracePath, nonEmpty: false),
        .churn("workload.churn", \.machine.workload.churn),

        .boolean("mmu.enabled", \.machine.mmu.enabled),
        .fraction("mmu.huge_share", \.machine.mmu.hugeShare, in: 0...1),

        .boolean("tracking.departing_hook", \.machine.mmu.departingHook),

        .rate("dma.rate", \.machine.dma.rate),
        .size("dma.block_size", \.machine.dma.blockSize, type: "a power of two from 4KiB to 2MiB", powerOfTwo: true) {
            $0.machine.frameSize...(2 << 20)
        },
        .boolean("dma.dual_write", \.policy.dmaDualWrite),

        .string("control.socket", \.control.socketPath, nonEmpty: false),
        .string("control.group", \.control.group, nonEmpty: false),

        .string("metrics.textfile", \.metricsTextfile, nonEmpty: false),

        .duration("remote.epoch", \.replication.epochNanoseconds, in: 1_000_000...10_000_000_000),
        .size(
            "remote.staging", \.replication.stagingBytes,
            type: "a size from 1MiB (or memory.size, if smaller) to memory.size, a whole number of 4KiB frames"
        ) {
            min(1 << 20, $0.machine.memorySize)...(1 << 40)
        },
        .duration("remote.timeout", \.remote.timeoutNanoseconds, in: 10_000_000...60_000_000_000),
        .boolean("remote.standby", \.remote.standby),
        .string("remote.release_log", \.remote.releaseLogPath, nonEmpty: false),
        .string("remote.tls_certificates", \.remote.tlsCertificatesPath, nonEmpty: false),
        .string("remote.tls_psk_file", \.remote.tlsPSKFilePath, nonEmpty: false),

        .boolean("fault.flip_spare_bit", \.machine.faults.flipSpareBit),
        .integer("fault.hang_after_pass", \.hangAfterPass, type: "an integer from 0 to 100000") { _ in 0...100_000 },
        .duration("fault.blackout_stall", \.machine.faults.blackoutStallNanoseconds, in: 0...60_000_000_000),
        .duration("fault.full_copy_stall", \.machine.faults.fullCopyStallNanoseconds, in: 0...60_000_000_000),
        .choice("fault.module", \.faultDrill.target),
        .choice("fault.kind", \.faultDrill.kind),
        .integer("fault.frame", \.faultDrill.frame, type: "an integer from 0 to the last frame of memory.size") {
            0...max(0, $0.frames - 1)
        },
        .integer("fault.count", \.faultDrill.count, type: "an integer from 1 to 100000") { _ in 1...100_000 },
        .choice("fault.during", \.faultDrill.moment),
        .integer("fault.pass", \.faultDrill.pass, type: "an integer from 1 to 100000") { _ in 1...100_000 },
        .duration("fault.after", \.faultDrill.afterNanoseconds, in: 0...86_400_000_000_000),
        .duration("fault.replace_after", \.faultDrill.replaceAfterNanoseconds, in: 0...86_400_000_000_000),
    ]

    /// The keys by name.
    package static let byName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The sections, in file order.
    package static let sections: [String] = all.reduce(into: []) { sections, key in
        if sections.last != key.section { sections.append(key.section) }
    }

    /// A check that relates keys, run right after the key it follows has been read.
    struct Rule: Sendable {
        let after: String
        let check: @Sendable (inout FieldReader, inout MirrordConfiguration) throws(ConfigurationError) -> Void
    }

    /// The rules, each after the key it follows.
    static let rules: [Rule] = [
        Rule(after: "duplex.throttle_max") { reader, config throws(ConfigurationError) in
            let policy = config.policy
            if policy.throttleInitial > policy.throttleMaximum {
                throw reader.error(
                    "duplex.throttle_initial",
                    "\(Int(policy.throttleInitial * 100)) is above duplex.throttle_max (\(Int(policy.throttleMaximum * 100)))"
                )
            }
        },
        Rule(after: "workload.cpu_patterns") { reader, config throws(ConfigurationError) in
            let workload = config.machine.workload
            if !workload.cpuRates.isEmpty && workload.cpuRates.count != workload.cpus {
                throw reader.error(
                    "workload.cpu_rates",
                    "\(workload.cpuRates.count) rates for \(workload.cpus) CPUs (workload.cpus); give one a CPU, or \"\" to share workload.rate",
                    orKey: "workload.cpus")
            }
            if !workload.cpuPatterns.isEmpty && workload.cpuPatterns.count != workload.cpus {
                throw reader.error(
                    "workload.cpu_patterns",
                    "\(workload.cpuPatterns.count) patterns for \(workload.cpus) CPUs (workload.cpus); give one a CPU, or \"\" for workload.pattern on every CPU",
                    orKey: "workload.cpus")
            }
        },
        Rule(after: "memory.state_dir") { reader, config throws(ConfigurationError) in
            if config.machine.memorySize % config.machine.frameSize != 0 {
                throw reader.error(
                    "memory.size", "\(config.machine.memorySize) bytes is not a whole number of 4KiB frames")
            }
        },
        Rule(after: "memory.spare") { reader, config throws(ConfigurationError) in
            let backend = config.backend
            if config.remote.isRemote && backend.usesRealMMU {
                throw reader.error(
                    "memory.spare",
                    "a spare on another host needs hardware.backend = \"emulated\": backend \"\(backend.rawValue)\" tracks writes with the real MMU, which does not see the DMA engine's writes, so they would never reach the spare",
                    orKey: "hardware.backend")
            }
        },
        Rule(after: "remote.staging") { reader, config throws(ConfigurationError) in
            let memory = config.machine.memorySize
            guard reader.isSet("remote.staging") else {
                // The default steps aside for a smaller memory: an epoch never holds more than all of it.
                config.replication.stagingBytes = min(config.replication.stagingBytes, memory)
                return
            }
            let staging = config.replication.stagingBytes
            if staging % config.machine.frameSize != 0 {
                throw reader.error(
                    "remote.staging",
                    "\(ByteCount.format(staging)) is not a whole number of \(ByteCount.format(config.machine.frameSize)) frames"
                )
            }
            if staging > memory {
                throw reader.error(
                    "remote.staging",
                    "\(ByteCount.format(staging)) is larger than memory.size (\(ByteCount.format(memory))); an epoch never holds more than all of memory",
                    orKey: "memory.size")
            }
        },
        Rule(after: "remote.tls_psk_file") { reader, config throws(ConfigurationError) in
            try RemoteTLSRule.check(&reader, config.remote)
        },
        Rule(after: "workload.trace") { reader, config throws(ConfigurationError) in
            let workload = config.machine.workload
            guard workload.replaysTrace else { return }
            if workload.tracePath.isEmpty {
                let named =
                    reader.isSet("workload.cpu_patterns") && workload.pattern != .trace
                    ? "workload.cpu_patterns" : "workload.pattern"
                throw reader.error(
                    "workload.trace", "pattern \"trace\" needs workload.trace = PATH of a lackey log", orKey: named)
            }
            do throws(HardwareError) {
                try LackeyTraceFormat.check(path: workload.tracePath)
            } catch {
                // The run reads the same file the same way: what fails here would fail there.
                throw reader.error("workload.trace", "cannot read the trace file: \(error.message)")
            }
        },
        Rule(after: "mmu.huge_share") { reader, config throws(ConfigurationError) in
            let backend = config.backend
            if backend.usesRealMMU {
                // The real MMU tracks writes: the emulated MMU and its churn do not apply. Their
                // defaults step aside; an explicit request for them is an error.
                if reader.isSet("mmu.enabled") && config.machine.mmu.enabled {
                    throw reader.error(
                        "mmu.enabled",
                        "the emulated MMU does not apply to hardware.backend = \"\(backend.rawValue)\"; remove it or set false"
                    )
                }
                if reader.isSet("workload.churn") && config.machine.workload.churn > 0 {
                    throw reader.error(
                        "workload.churn",
                        "page-table churn needs the emulated MMU, which backend \"\(backend.rawValue)\" does not use; set \"0/s\""
                    )
                }
                if config.machine.backing == .file {
                    throw reader.error(
                        "memory.backing",
                        "backend \"\(backend.rawValue)\" needs anonymous memory (it tracks writes through a second mapping of shared memory)",
                        orKey: "hardware.backend")
                }
                config.machine.mmu.enabled = false
                config.machine.workload.churn = 0
            }
            if config.remote.isRemote {
                // A spare on another host needs writers with a dirty limit (an epoch must fit its
                // journal half), which the emulated MMU's, their dirty frames in page tables until a
                // harvest, do not have. Its defaults step aside; an explicit request is an error.
                if reader.isSet("mmu.enabled") && config.machine.mmu.enabled {
                    throw reader.error(
                        "mmu.enabled",
                        "a spare on another host (memory.spare) needs mmu.enabled = false: the emulated MMU's writers have "
                            + "no dirty limit, so an epoch could outgrow its journal half",
                        orKey: "memory.spare")
                }
                if reader.isSet("workload.churn") && config.machine.workload.churn > 0 {
                    throw reader.error(
                        "workload.churn",
                        "page-table churn needs the emulated MMU, which a spare on another host (memory.spare) does not use; "
                            + "set \"0/s\"",
                        orKey: "memory.spare")
                }
                config.machine.mmu.enabled = false
                config.machine.workload.churn = 0
            }
            if config.machine.workload.churn > 0 && !config.machine.mmu.enabled {
                throw reader.error(
                    "workload.churn", "page-table churn needs the MMU (mmu.enabled = true, or churn = \"0/s\")",
                    orKey: "mmu.enabled")
            }
        },
        Rule(after: "fault.replace_after") { reader, config throws(ConfigurationError) in
            let drill = config.faultDrill
            if drill.kind == .correctable && drill.frame + drill.count - 1 >= config.frames {
                throw reader.error(
                    "fault.count",
                    "\(drill.count) faults from frame \(drill.frame) run past the last frame (\(config.frames - 1))",
                    orKey: "fault.frame")
            }
            if config.remote.isRemote {
                // A spare on another host is an export, not a module here: nothing local to flip,
                // lose or replace.
                if config.machine.faults.flipSpareBit {
                    throw reader.error(
                        "fault.flip_spare_bit",
                        "flips a bit of the local spare module, which memory.spare on another host replaces; set false, or memory.spare = \"\"",
                        orKey: "memory.spare")
                }
                if drill.isArmed {
                    throw reader.error(
                        "fault.module",
                        "a module drill (\"\(drill.target.rawValue)\") fails over to, or replaces, the local spare module, which memory.spare on another host replaces; set \"none\", or memory.spare = \"\"",
                        orKey: "memory.spare")
                }
            }
            if drill.target == .active && config.backend.usesRealMMU {
                throw reader.error(
                    "fault.module",
                    "a failover needs hardware.backend = \"emulated\" (backend \"\(config.backend.rawValue)\" watches the active module's own mapping)",
                    orKey: "hardware.backend")
            }
        },
        Rule(after: "dma.block_size") { reader, config throws(ConfigurationError) in
            if let problem = config.machine.writerLayoutProblem {
                throw reader.error("workload.cpus", problem, orKey: "workload.store_size")
            }
            if config.machine.dma.blockSize > config.machine.memorySize {
                throw reader.error(
                    "dma.block_size", "\(ByteCount.format(config.machine.dma.blockSize)) is larger than memory.size")
            }
        },
    ]
}
