import MirrorCore
import MirrordConfig
import Testing

@Suite("The spare on another host: memory.spare and [remote]")
struct RemoteConfigurationTests {
    @Test("the defaults: a local spare, epochs of 10ms, 256MiB of staging, a 1s timeout, no release log")
    func defaults() throws {
        let config = MirrordConfiguration()
        #expect(config.remote.spareURI == "")
        #expect(!config.remote.isRemote && !config.remote.warnsCleartext)
        #expect(config.remote.timeoutNanoseconds == 1_000_000_000)
        #expect(config.remote.releaseLogPath == "")
        #expect(config.remote.tlsCertificatesPath == "" && config.remote.tlsPSKFilePath == "")
        #expect(config.value(forKey: "remote.tls_certificates") == "\"\"")
        #expect(config.value(forKey: "remote.tls_psk_file") == "\"\"")
        #expect(config.replication == ReplicationPolicy(epochNanoseconds: 10_000_000, stagingBytes: 256 << 20))
        #expect(try parse("") == config)
        #expect(config.value(forKey: "memory.spare") == "\"\"")
        #expect(config.value(forKey: "remote.epoch") == "\"10ms\"")
        #expect(config.value(forKey: "remote.staging") == "\"256MiB\"")
        #expect(config.value(forKey: "remote.timeout") == "\"1s\"")
        #expect(config.value(forKey: "remote.release_log") == "\"\"")
    }

    @Test("every key is read into the replication policy and the remote options")
    func values() throws {
        let config = try parse(
            """
            [memory]
            size = "2GiB"
            spare = "nbds://spare.example.com:10810/mirror"
            [remote]
            epoch = "25ms"
            staging = "64MiB"
            timeout = "250ms"
            release_log = "/var/lib/mirrord/released.log"
            tls_certificates = "\(TLSFixture.certificates)"
            """)
        #expect(config.remote.spareURI == "nbds://spare.example.com:10810/mirror")
        #expect(config.remote.isRemote && !config.remote.warnsCleartext)
        #expect(config.replication.epochNanoseconds == 25_000_000)
        #expect(config.replication.stagingBytes == 64 << 20)
        #expect(config.replication.epochCapacity(frameSize: 4096) == 16_384)
        #expect(config.remote.timeoutNanoseconds == 250_000_000)
        #expect(config.remote.releaseLogPath == "/var/lib/mirrord/released.log")
        #expect(config.remote.tlsCertificatesPath == TLSFixture.certificates && config.remote.tlsPSKFilePath == "")
        #expect(
            try parse("", environment: ["MIRRORD_REMOTE_RELEASE_LOG": "/tmp/r.log", "MIRRORD_REMOTE_EPOCH": "1ms"])
                .remote.releaseLogPath == "/tmp/r.log")
    }

    @Test("every URI libnbd reads is taken apart")
    func uris() throws {
        let tcp = try #require(NBDURI("nbd://10.0.0.2:10809/spare"))
        #expect(tcp.scheme == .nbd && tcp.host == "10.0.0.2" && tcp.port == 10809 && tcp.export == "spare")
        let v6 = try #require(NBDURI("nbds://[fd00::2]/x"))
        #expect(v6.host == "fd00::2" && v6.port == nil && v6.scheme.usesTLS)
        let unix = try #require(NBDURI("nbd+unix:///spare?socket=/run/nbd.sock"))
        #expect(unix.host == "" && unix.socket == "/run/nbd.sock" && unix.export == "spare")
        #expect(NBDURI("nbds+unix://alice@/?socket=/run/nbd.sock")?.export == "")
        #expect(NBDURI("nbd+vsock://2/spare")?.host == "2")
        #expect(NBDURI("nbds+vsock://3:10809/spare")?.port == 10809)
        #expect(NBDURI("NBD://spare/x")?.scheme == .nbd)
        #expect(NBDURI("nbd://spare")?.export == "")
        for uri in [
            "nbd://10.0.0.2/x", "nbds://h/x", "nbd+unix:///x?socket=/s", "nbds+unix:///?socket=/s", "nbd+vsock://2/x",
        ] {
            #expect(
                try parse("[memory]\nspare = \"\(uri)\"\n", environment: TLSFixture.credentials(for: uri)).remote
                    .spareURI
                    == uri)
        }
    }

    @Test("a bad URI is refused naming the key, the line and what is wrong")
    func badURIs() {
        let schemes = "(nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock://, nbds+vsock://)"
        #expect(
            error("[memory]\nsize = \"1GiB\"\nspare = \"http://x\"\n")?.description
                == "test.conf:3: memory.spare: \"http://x\" is not an NBD URI \(schemes)")
        #expect(
            error("[memory]\nspare = \"spare.example.com\"\n")?.description
                == "test.conf:2: memory.spare: \"spare.example.com\" is not an NBD URI \(schemes)")
        #expect(
            error("[memory]\nspare = \"nbd:///x\"\n")?.description
                == "test.conf:2: memory.spare: \"nbd:///x\" names no host; write nbd://HOST[:PORT]/EXPORT")
        #expect(
            error("[memory]\nspare = \"nbd+unix:///x\"\n")?.description
                == "test.conf:2: memory.spare: \"nbd+unix:///x\" names no socket; write nbd+unix:///EXPORT?socket=PATH")
        #expect(
            error("[memory]\nspare = \"nbd+unix://host/x?socket=/s\"\n")?.description.hasPrefix(
                "test.conf:2: memory.spare: \"nbd+unix://host/x?socket=/s\": an nbd+unix:// URI takes no host") == true)
        #expect(
            error("[memory]\nspare = \"nbd://h:99999/x\"\n")?.description
                == "test.conf:2: memory.spare: \"nbd://h:99999/x\": \"99999\" is not a port (1 to 65535)")
        #expect(
            error("[memory]\nspare = \"nbd://h/x?socket=/s\"\n")?.description
                == "test.conf:2: memory.spare: \"nbd://h/x?socket=/s\": socket= belongs to nbd+unix:// and nbds+unix:// only"
        )
        #expect(error("[memory]\nspare = \"nbd+vsock://host/x\"\n")?.description.contains("numeric vsock CID") == true)
        #expect(error("[memory]\nspare = \"nbd://[fd00::2/x\"\n")?.key == "memory.spare")
        #expect(error("[memory]\nspare = \"nbd://fd00::2/x\"\n")?.description.contains("in brackets") == true)
        #expect(error("[memory]\nspare = \"nbd://h /x\"\n")?.description.contains("space") == true)
        #expect(
            error("[memory]\nspare = \"nbds://h/x?tls-psk-file=/etc/k\"\n")?.description.contains("local file") == true)
        #expect(
            error("[memory]\nspare = 10\n")?.description
                == "test.conf:2: memory.spare: expected an NBD URI in double quotes, like \"nbds://HOST/EXPORT\", found an integer 10"
        )
        #expect(
            error("", environment: ["MIRRORD_MEMORY_SPARE": "ftp://x"])?.source == "environment MIRRORD_MEMORY_SPARE")
    }

    @Test("a password in a URI is never echoed")
    func passwordsRedacted() {
        let message = error("[memory]\nspare = \"http://alice:hunter2@h/x?password=s3cret&tls=on\"\n")?.description
        #expect(message?.contains("\"http://alice:***@h/x?password=***&tls=on\" is not an NBD URI") == true)
        #expect(message?.contains("hunter2") == false && message?.contains("s3cret") == false)
        let bad = error("[memory]\nspare = \"nbd://bob:pw@h:0/x\"\n")?.description
        #expect(bad?.contains("nbd://bob:***@h:0/x") == true && bad?.contains(":pw@") == false)
        var options = RemoteOptions()
        options.spareURI = "nbds://alice:hunter2@h/x?secret_key=abc&socket_password=def"
        #expect(options.redactedSpareURI == "nbds://alice:***@h/x?secret_key=***&socket_password=***")
        #expect(NBDURI.redacted("nbd://h/x") == "nbd://h/x")
        #expect(NBDURI.redacted("alice:hunter2@h/x") == "alice:***@h/x")
        // Found by the fuzzer: a # before the query; the password holds a # and a /.
        #expect(NBDURI.redacted("nbds://a#:pw@h/x?password=y#z") == "nbds://a#:***@h/x?password=***")
        #expect(NBDURI.redacted("nbd://a:p/w#@h/x") == "nbd://a:***@h/x")
        let fuzzed = error("[memory]\nspare = \"nbds://alice#:pw@[fd00::2]:108x10/spare?password=x&tls=1\"\n")
        #expect(fuzzed?.key == "memory.spare" && fuzzed?.description.contains(":pw@") == false)
        #expect(error("[memory]\nspare = \"alice:hunter2@h\"\n")?.description.contains("hunter2") == false)
    }

    @Test("an epoch or a timeout out of range, and a staging area that does not fit, are refused")
    func badValues() {
        #expect(
            error("[remote]\nepoch = \"0\"\n")?.description
                == "test.conf:2: remote.epoch: 0 is out of range (1ms to 10s)")
        #expect(
            error("[remote]\n\nepoch = \"20s\"\n")?.description
                == "test.conf:3: remote.epoch: 20s is out of range (1ms to 10s)")
        #expect(
            error("[remote]\nepoch = \"soon\"\n")?.description.hasPrefix(
                "test.conf:2: remote.epoch: \"soon\" is not a duration") == true)
        #expect(
            error("[remote]\ntimeout = \"5ms\"\n")?.description
                == "test.conf:2: remote.timeout: 5ms is out of range (10ms to 60s)")
        #expect(
            error("[remote]\ntimeout = \"61s\"\n")?.description
                == "test.conf:2: remote.timeout: 61s is out of range (10ms to 60s)")
        #expect(
            error("[remote]\nstaging = \"1025KiB\"\n")?.description
                == "test.conf:2: remote.staging: 1025KiB is not a whole number of 4KiB frames")
        #expect(
            error("[memory]\nsize = \"64MiB\"\n[remote]\nstaging = \"128MiB\"\n")?.description
                == "test.conf:4: remote.staging: 128MiB is larger than memory.size (64MiB); an epoch never holds more than all of memory"
        )
        #expect(
            error("[remote]\nstaging = \"512KiB\"\n")?.description
                == "test.conf:2: remote.staging: 512KiB is out of range (1MiB to 1TiB)")
        #expect(error("[remote]\nrelease_log = false\n")?.key == "remote.release_log")
        #expect(error("[remote]\nstagin = \"1MiB\"\n")?.description.contains("[remote] knows epoch, staging") == true)
    }

    @Test("without remote.staging, a memory smaller than the default staging area gives its own size")
    func stagingStepsAside() throws {
        #expect(try parse("[memory]\nsize = \"64MiB\"\n").replication.stagingBytes == 64 << 20)
        #expect(try parse("[memory]\nsize = \"64KiB\"\n").replication.stagingBytes == 64 << 10)
        #expect(try parse("[memory]\nsize = \"4GiB\"\n").replication.stagingBytes == 256 << 20)
        #expect(
            try parse("[memory]\nsize = \"64MiB\"\n[remote]\nstaging = \"64MiB\"\n").replication.stagingBytes == 64
                << 20)
    }

    @Test("a remote spare needs the emulated backend and refuses the local spare module's drills")
    func crossKeyRefusals() {
        let uffd = error("[hardware]\nbackend = \"uffd\"\n[memory]\nspare = \"nbd://h/x\"\n")
        #expect(uffd?.line == 4 && uffd?.key == "memory.spare")
        #expect(
            uffd?.message
                == "a spare on another host needs hardware.backend = \"emulated\": backend \"uffd\" tracks writes with the real MMU, which does not see the DMA engine's writes, so they would never reach the spare"
        )
        #expect(
            error("", environment: ["MIRRORD_HARDWARE_BACKEND": "mprotect", "MIRRORD_MEMORY_SPARE": "nbd://h/x"])?.key
                == "memory.spare")
        let flip = error("[memory]\nspare = \"nbd://h/x\"\n[fault]\nflip_spare_bit = true\n")
        #expect(flip?.line == 4 && flip?.key == "fault.flip_spare_bit")
        #expect(flip?.message.contains("memory.spare") == true)
        let drill = error("[memory]\nspare = \"nbd://h/x\"\n[fault]\nmodule = \"active\"\n")
        #expect(drill?.line == 4 && drill?.key == "fault.module")
        #expect(drill?.message.hasPrefix("a module drill (\"active\") fails over to") == true)
        #expect(drill?.message.contains("memory.spare") == true)
        #expect(error("[memory]\nspare = \"nbd://h/x\"\n[fault]\nmodule = \"spare\"\n")?.key == "fault.module")
        // The same drills with the local spare are fine, and so are the engine's own faults remotely.
        #expect(error("[fault]\nflip_spare_bit = true\nmodule = \"active\"\n") == nil)
        #expect(
            error("[memory]\nspare = \"nbd://h/x\"\n[fault]\nhang_after_pass = 3\nblackout_stall = \"1ms\"\n") == nil)
    }

    @Test("a remote spare turns the emulated MMU and its churn off, unless they are asked for: then one line each")
    func remoteWithoutMMU() throws {
        let quiet = try parse("[memory]\nspare = \"nbd://h/x\"\n")
        #expect(!quiet.machine.mmu.enabled && quiet.machine.workload.churn == 0)
        #expect(try parse("").machine.mmu.enabled, "the local spare keeps the MMU")
        let mmu = error("[memory]\nspare = \"nbd://h/x\"\n[mmu]\nenabled = true\n")
        #expect(mmu?.line == 4 && mmu?.key == "mmu.enabled")
        #expect(mmu?.message.hasPrefix("a spare on another host (memory.spare) needs mmu.enabled = false") == true)
        let churn = error("[memory]\nspare = \"nbd://h/x\"\n[workload]\nchurn = \"100/s\"\n")
        #expect(churn?.line == 4 && churn?.key == "workload.churn")
        #expect(
            try parse("[memory]\nspare = \"nbd://h/x\"\n[mmu]\nenabled = false\n[workload]\nchurn = \"0/s\"\n").remote
                .isRemote)
    }

    @Test("cleartext to another host warns; loopback, Unix sockets and TLS do not")
    func cleartext() throws {
        func warns(_ uri: String) throws -> Bool {
            try parse("[memory]\nspare = \"\(uri)\"\n", environment: TLSFixture.credentials(for: uri)).remote
                .warnsCleartext
        }
        #expect(try warns("nbd://10.0.0.2/x"))
        #expect(try warns("nbd://spare.example.com:10809/x"))
        #expect(try warns("nbd://[fd00::2]/x"))
        #expect(try warns("nbd+vsock://2/x"))
        #expect(try !warns("nbd://localhost/x"))
        #expect(try !warns("nbd://127.0.0.1:10809/x"))
        #expect(try !warns("nbd://[::1]/x"))
        #expect(try !warns("nbd+vsock://1/x"))
        #expect(try !warns("nbd+unix:///x?socket=/run/nbd.sock"))
        #expect(try !warns("nbds://10.0.0.2/x"))
        #expect(try !warns("nbds+vsock://2/x"))
    }

    @Test("none of the keys can change on a running service")
    func notReloadable() throws {
        for key in [
            "memory.spare", "remote.epoch", "remote.staging", "remote.timeout", "remote.standby", "remote.release_log",
            "remote.tls_certificates", "remote.tls_psk_file",
        ] {
            #expect(!MirrordConfiguration.isReloadable(key), "\(key)")
        }
        let running = MirrordConfiguration()
        let candidate = try parse(
            "[memory]\nspare = \"nbds://h/x\"\n[remote]\nepoch = \"5ms\"\nstaging = \"1MiB\"\ntimeout = \"2s\"\n"
                + "release_log = \"/tmp/r\"\ntls_certificates = \"\(TLSFixture.certificates)\"\n[duplex]\nmax_passes = 7\n"
        )
        #expect(
            candidate.changedKeys(comparedTo: running) == [
                "memory.spare", "duplex.max_passes", "workload.churn", "mmu.enabled", "remote.epoch", "remote.staging",
                "remote.timeout",
                "remote.release_log", "remote.tls_certificates",
            ])
        let applied = running.applyingReloadable(from: candidate)
        #expect(applied.policy.maxPasses == 7)
        #expect(applied.remote == running.remote && applied.replication == running.replication)
    }
}
