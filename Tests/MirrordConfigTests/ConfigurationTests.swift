import Foundation
import MirrorCore
import MirrordConfig
import Testing

@Suite("Configuration file and overrides")
struct ConfigurationTests {
    static let repositoryConfig = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/mirrord.conf").path

    @Test("config/mirrord.conf holds exactly the built-in defaults and sets every known key")
    func shippedFileIsTheDefaults() throws {
        let fromFile = try ConfigurationLoader.load(path: Self.repositoryConfig)
        #expect(fromFile == MirrordConfiguration())
        #expect(try ConfigurationLoader.load(path: nil) == MirrordConfiguration())
        let text = try String(contentsOfFile: Self.repositoryConfig, encoding: .utf8)
        let names = try ConfigurationFile(text: text, source: "mirrord.conf").entries.map(\.name)
        #expect(names == ConfigurationLoader.knownKeys)
    }

    @Test("values of every type and unit are read")
    func typedValues() throws {
        let config = try parse(
            """
            [memory]
            size = "2GiB"   # a comment after a value
            backing = "file"
            state_dir = '/tmp/x'
            [duplex]
            threshold_frames = 2_048
            min_progress = 0
            [workload]
            pattern = "uniform"
            rate = "unlimited"
            store_size = "8B"
            [dma]
            rate = "1.5MiB/s"
            dual_write = false
            """)
        #expect(config.machine.memorySize == 2 << 30)
        #expect(config.machine.backing == .file)
        #expect(config.machine.stateDirectory == "/tmp/x")
        #expect(config.policy.thresholdFrames == 2048)
        #expect(config.policy.minProgress == 0)
        #expect(config.machine.workload.pattern == .uniform)
        #expect(config.machine.workload.rate == .unlimited)
        #expect(config.machine.workload.storeSize == 8)
        #expect(config.machine.dma.rate == .limited(bytesPerSecond: 1_572_864))
        #expect(config.policy.dmaDualWrite == false)
    }

    @Test("an unknown key names the file, line, key and the keys its section knows")
    func unknownKey() {
        let e = error("[duplex]\nthreshold_frames = 10\nthreshhold = 5\n")
        #expect(
            e?.description
                == "test.conf:3: duplex.threshhold: unknown key; [duplex] knows threshold_frames, max_passes, min_progress, verify_in_blackout, blackout_target, convergence, throttle_initial, throttle_increment, throttle_max, max_duration, auto_reduplex, correctable_limit, correctable_window"
        )
    }

    @Test("an unknown section is named")
    func unknownSection() {
        let e = error("[dupelx]\nthreshold_frames = 10\n")
        #expect(e?.line == 1)
        #expect(e?.description.contains("unknown section [dupelx]") == true)
    }

    @Test("a wrong type is an error, never a silent default")
    func wrongType() {
        #expect(
            error("[duplex]\nmax_passes = \"lots\"\n")?.description
                == "test.conf:2: duplex.max_passes: expected an integer, found a string \"lots\"")
        #expect(
            error("[dma]\ndual_write = 1\n")?.description
                == "test.conf:2: dma.dual_write: expected true or false, found an integer 1")
        #expect(error("[memory]\nsize = true\n")?.key == "memory.size")
    }

    @Test("out-of-range values name the range")
    func outOfRange() {
        #expect(
            error("[duplex]\nmax_passes = 0\n")?.description
                == "test.conf:2: duplex.max_passes: 0 is out of range (1...100000)")
        #expect(error("[duplex]\nmin_progress = 1.0\n")?.key == "duplex.min_progress")
        #expect(error("[workload]\nhot_fraction = 0\n")?.key == "workload.hot_fraction")
        #expect(error("[memory]\nsize = \"4095B\"\n")?.key == "memory.size")
        #expect(
            error("[memory]\nsize = \"1GiB\"\n[duplex]\nthreshold_frames = 300000\n")?.description
                == "test.conf:4: duplex.threshold_frames: 300000 is out of range (0...262144)")
        #expect(
            error("[workload]\nstore_size = \"48B\"\n")?.description
                == "test.conf:2: workload.store_size: 48B is not a power of two")
        #expect(error("[memory]\nsize = \"lots\"\n")?.description.contains("is not a size") == true)
        #expect(error("[dma]\nrate = \"fast\"\n")?.description.contains("is not a rate") == true)
        #expect(
            error("[workload]\npattern = \"random\"\n")?.description
                == "test.conf:2: workload.pattern: \"random\" is not one of \"uniform\", \"hotset\", \"sequential\", \"trace\""
        )
    }

    @Test("syntax errors name the line")
    func syntax() {
        #expect(
            error("[duplex]\nthreshold_frames 10\n")?.description
                == "test.conf:2: duplex.threshold_frames: expected '=' after the key")
        #expect(error("[memory]\nsize = \"1GiB\n")?.description.contains("unterminated string") == true)
        #expect(error("[memory\n")?.description == "test.conf:1: expected ']' after section name 'memory'")
        #expect(error("size = \"1GiB\"\n")?.description.contains("key outside a section") == true)
        #expect(
            error("[duplex]\nmax_passes = 3\nmax_passes = 4\n")?.description
                == "test.conf:3: duplex.max_passes: set twice (first on line 2)")
        #expect(error("[memory]\nbacking = file\n")?.description.contains("strings need double quotes") == true)
        #expect(
            error("[duplex]\n[duplex]\n")?.description
                == "test.conf:2: section [duplex] appears twice (first on line 1)")
    }

    @Test("a trace pattern needs a readable trace file")
    func traceNeedsFile() {
        #expect(
            error("[workload]\npattern = \"trace\"\n")?.description
                == "test.conf:2: workload.trace: pattern \"trace\" needs workload.trace = PATH of a lackey log")
        #expect(error("[workload]\npattern = \"trace\"\ntrace = \"/nonexistent/lackey.log\"\n")?.line == 3)
    }

    @Test("environment overrides win over the file and are checked like it")
    func environment() throws {
        let config = try parse(
            "[duplex]\nthreshold_frames = 10\n",
            environment: [
                "MIRRORD_DUPLEX_THRESHOLD_FRAMES": "512", "MIRRORD_MEMORY_SIZE": "2GiB",
                "PATH": "/usr/bin",
            ])
        #expect(config.policy.thresholdFrames == 512)
        #expect(config.machine.memorySize == 2 << 30)
        #expect(
            error("", environment: ["MIRRORD_DUPLEX_MAX_PASSES": "many"])?.description
                == "environment MIRRORD_DUPLEX_MAX_PASSES: duplex.max_passes: expected an integer, found a string \"many\""
        )
        #expect(error("", environment: ["MIRRORD_DUPLEX_TRESHOLD": "1"])?.description.contains("unknown key") == true)
    }

    @Test("a missing file is an error naming it")
    func missingFile() {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: "/nonexistent/mirrord.conf")
        }
        #expect(error?.description.hasPrefix("/nonexistent/mirrord.conf: cannot read the file") == true)
    }

    @Test("sizes and rates parse with their units")
    func units() {
        #expect(ByteCount.parse("64B") == 64)
        #expect(ByteCount.parse("4KiB") == 4096)
        #expect(ByteCount.parse("1GiB") == 1 << 30)
        #expect(ByteCount.parse("2GB") == 2_000_000_000)
        #expect(ByteCount.parse("1.5GiB") == 3 << 29)
        #expect(ByteCount.parse("1.3B") == nil)
        #expect(ByteCount.parse("-1MiB") == nil)
        #expect(ByteCount.parse("12 parsecs") == nil)
        #expect(ByteCount.format(1 << 30) == "1GiB")
        #expect(ByteRate.parse("200MiB/s") == .limited(bytesPerSecond: 200 << 20))
        #expect(ByteRate.parse("unlimited") == .unlimited)
        #expect(ByteRate.parse("200MiB") == nil)
    }
}

@Suite("Configuration changes on reload")
struct ConfigurationChangeTests {
    @Test("every known key has a value, and a change names exactly the keys that changed")
    func changedKeys() throws {
        let base = MirrordConfiguration()
        for key in ConfigurationLoader.knownKeys { #expect(!base.value(forKey: key).isEmpty) }
        let changed = try ConfigurationLoader.parse(
            text: "[memory]\nsize = \"2GiB\"\n[duplex]\nthreshold_frames = 512\n", source: "t.conf")
        #expect(changed.changedKeys(comparedTo: base) == ["memory.size", "duplex.threshold_frames"])
        #expect(MirrordConfiguration.isReloadable("duplex.threshold_frames"))
        #expect(!MirrordConfiguration.isReloadable("memory.size"))
    }

    @Test("value(forKey:) writes values the loader reads back to the same configuration")
    func roundTrip() throws {
        var config = MirrordConfiguration()
        config.machine.memorySize = 3 << 30
        config.machine.workload.rate = .unlimited
        config.policy.dmaDualWrite = false
        config.policy.minProgress = 0.125
        var text = ""
        var section = ""
        for key in ConfigurationLoader.knownKeys {
            let parts = key.split(separator: ".")
            if parts[0] != section {
                section = String(parts[0])
                text += "[\(section)]\n"
            }
            text += "\(parts[1]) = \(config.value(forKey: key))\n"
        }
        #expect(try ConfigurationLoader.parse(text: text, source: "roundtrip") == config)
    }
}

@Suite("The uffd backend's configuration")
struct UffdConfigurationTests {
    @Test("backend uffd sets the emulated MMU and churn aside, and refuses an explicit request for them")
    func uffdRules() throws {
        let config = try ConfigurationLoader.parse(text: "[hardware]\nbackend = \"uffd\"\n", source: "u.conf")
        #expect(config.backend == .uffd)
        #expect(!config.machine.mmu.enabled)
        #expect(config.machine.workload.churn == 0)
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(
                text: "[hardware]\nbackend = \"uffd\"\n[mmu]\nenabled = true\n", source: "u.conf")
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(
                text: "[hardware]\nbackend = \"uffd\"\n[workload]\nchurn = \"10/s\"\n", source: "u.conf")
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(
                text: "[hardware]\nbackend = \"uffd\"\n[memory]\nbacking = \"file\"\n", source: "u.conf")
        }
    }
}

@Suite("The convergence keys")
struct ConvergenceConfigurationTests {
    func parse(_ text: String) throws(ConfigurationError) -> MirrordConfiguration {
        try ConfigurationLoader.parse(text: text, source: "c.conf")
    }

    func error(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("durations, policies, percentages and per-CPU lists are read into the policy and the machine")
    func values() throws {
        let config = try parse(
            """
            [duplex]
            blackout_target = "500us"
            convergence = "throttle"
            throttle_initial = 30
            throttle_increment = 5
            throttle_max = 95
            max_duration = "2.5s"
            [workload]
            cpus = 3
            cpu_rates = "unlimited, 8MiB/s,16MiB/s"
            cpu_patterns = "uniform, hotset, hotset"
            """)
        #expect(config.policy.blackoutTargetNanoseconds == 500_000)
        #expect(config.policy.convergence == .throttle)
        #expect(config.policy.throttleInitial == 0.30)
        #expect(config.policy.throttleIncrement == 0.05)
        #expect(config.policy.throttleMaximum == 0.95)
        #expect(config.policy.maxDurationNanoseconds == 2_500_000_000)
        #expect(
            config.machine.workload.cpuRates == [
                .unlimited, .limited(bytesPerSecond: 8 << 20), .limited(bytesPerSecond: 16 << 20),
            ])
        #expect(config.machine.workload.cpuPatterns == [.uniform, .hotset, .hotset])
        #expect(
            try parse("[duplex]\nblackout_target = \"0\"\nmax_duration = 0\n").policy.blackoutTargetNanoseconds == 0)
        #expect(config.value(forKey: "duplex.blackout_target") == "\"500us\"")
        #expect(config.value(forKey: "duplex.max_duration") == "\"2500ms\"")
        #expect(config.value(forKey: "workload.cpu_rates") == "\"unlimited, 8MiB/s, 16MiB/s\"")
    }

    @Test("bad values name the file, line and key")
    func errors() {
        #expect(
            error("[duplex]\nblackout_target = \"fast\"\n")
                == "c.conf:2: duplex.blackout_target: \"fast\" is not a duration; write a number with a unit, like \"500us\", \"1ms\" or \"60s\", or \"0\""
        )
        #expect(
            error("[duplex]\nblackout_target = \"11s\"\n")
                == "c.conf:2: duplex.blackout_target: 11s is out of range (0 to 10s)")
        #expect(
            error("[duplex]\nblackout_target = 5\n")
                == "c.conf:2: duplex.blackout_target: expected a duration like \"1ms\", found an integer 5")
        #expect(
            error("[duplex]\nconvergence = \"auto\"\n")
                == "c.conf:2: duplex.convergence: \"auto\" is not one of \"dirty-limit\", \"throttle\", \"none\"")
        #expect(
            error("[duplex]\nthrottle_max = 100\n") == "c.conf:2: duplex.throttle_max: 100 is out of range (1...99)")
        #expect(
            error("[duplex]\nthrottle_increment = 0\n")
                == "c.conf:2: duplex.throttle_increment: 0 is out of range (1...99)")
        #expect(
            error("[duplex]\nmax_duration = \"25h\"\n")?.hasPrefix("c.conf:2: duplex.max_duration: 25h is out of range")
                == true)
        #expect(
            error("[duplex]\n\nmax_duration = \"soon\"\n")?.hasPrefix(
                "c.conf:3: duplex.max_duration: \"soon\" is not a duration") == true)
        #expect(
            error("[duplex]\nthrottle_initial = 60\nthrottle_max = 50\n")
                == "c.conf:2: duplex.throttle_initial: 60 is above duplex.throttle_max (50)")
        #expect(
            error("[workload]\ncpus = 2\ncpu_rates = \"1GiB/s\"\n")
                == "c.conf:3: workload.cpu_rates: 1 rates for 2 CPUs (workload.cpus); give one a CPU, or \"\" to share workload.rate"
        )
        #expect(
            error("[workload]\ncpu_rates = \"1GiB/s, quick\"\n")
                == "c.conf:2: workload.cpu_rates: \"quick\" is not a rate; write each CPU's rate like \"64MiB/s\" or \"unlimited\", separated by commas"
        )
        #expect(
            error("[workload]\ncpu_patterns = \"uniform, zigzag\"\n")
                == "c.conf:2: workload.cpu_patterns: \"zigzag\" is not one of \"uniform\", \"hotset\", \"sequential\", \"trace\""
        )
        #expect(
            error("[workload]\ncpus = 3\ncpu_patterns = \"uniform, hotset\"\n")?.hasPrefix(
                "c.conf:3: workload.cpu_patterns: 2 patterns for 3 CPUs") == true)
        #expect(
            error("[workload]\ncpu_patterns = \"trace, hotset\"\n")
                == "c.conf:2: workload.trace: pattern \"trace\" needs workload.trace = PATH of a lackey log")
    }
}

@Suite("Fault tolerance keys and drills")
struct FaultToleranceConfigurationTests {
    @Test("a drill and the fault-tolerance policy are read; a frame beyond memory and a failover on uffd are refused")
    func drill() throws {
        let config = try ConfigurationLoader.parse(
            text: """
                [memory]
                size = "64MiB"
                [duplex]
                auto_reduplex = false
                correctable_limit = 3
                correctable_window = "2h"
                [fault]
                module = "spare"
                kind = "correctable"
                frame = 16380
                count = 4
                during = "passes"
                pass = 2
                after = "1s"
                replace_after = "500ms"
                """, source: "drill.conf")
        #expect(!config.faultTolerance.autoReduplex && config.faultTolerance.correctableLimit == 3)
        #expect(config.faultTolerance.correctableWindowNanoseconds == 7_200_000_000_000)
        let drill = config.faultDrill
        #expect(
            drill.target == .spare && drill.moment == .passes && drill.pass == 2
                && drill.replaceAfterNanoseconds == 500_000_000)
        #expect(drill.faults == (16_380..<16_384).map { ModuleFault(.correctable, module: .spare, frame: $0) })
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(
                text: "[memory]\nsize = \"64MiB\"\n[fault]\nframe = 16384\n", source: "t.conf")
        }
        do {
            _ = try ConfigurationLoader.parse(
                text: "[hardware]\nbackend = \"uffd\"\n[fault]\nmodule = \"active\"\nkind = \"lost\"\n",
                source: "t.conf")
            Issue.record("a failover drill on uffd must be refused")
        } catch {
            #expect(
                error.description.hasPrefix("t.conf:4: fault.module: a failover needs hardware.backend = \"emulated\""))
        }
    }
}

@Suite("mirrord.conf(5)")
struct ConfigurationManualTests {
    @Test("the page has every key with its default, the values it takes and its description from the defaults file")
    func everyKey() throws {
        let defaults = try String(
            contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/config/mirrord.conf", encoding: .utf8)
        let page = ConfigurationManual.mdoc(defaultsFile: defaults, date: "December 2, 2026")
        for key in ConfigurationKeys.all {
            let value = key.defaultValue.split(separator: "\"", omittingEmptySubsequences: false).joined(
                separator: "\\(dq")
            #expect(page.contains(".It Cm \(key.key) No = Li \(value)"), "\(key.name)")
        }
        #expect(
            page.contains("Flip one bit of the spare right after the final copy"),
            "descriptions come from the file's comments")
    }
}
