/// `mirrord.conf(5)` in mdoc: every key of ``ConfigurationKeys/all`` with its default, the values
/// it takes and whether a reload applies it, described by the comments above it in the commented
/// defaults file (`config/mirrord.conf`), so the page, the loader and the file never disagree.
package enum ConfigurationManual {
    /// The page, in mdoc, dated `date` (`"December 2, 2026"`); `defaultsFile` is the text of
    /// `config/mirrord.conf`, whose comments describe the keys.
    package static func mdoc(defaultsFile: String, date: String) -> String {
        let descriptions = describe(defaultsFile)
        var out = [
            ".Dd \(date)", ".Dt MIRRORD.CONF 5", ".Os",
            ".Sh NAME", ".Nm mirrord.conf", ".Nd configuration of the mirrord memory duplexing daemon",
            ".Sh DESCRIPTION",
            "mirrord reads its configuration from the file given with",
            ".Fl -config",
            "(the unit passes",
            ".Pa /etc/mirrord/mirrord.conf ) .",
            "The file is a subset of TOML: sections in brackets and",
            ".Li key = value",
            "lines; strings in double quotes, integers, decimals,",
            ".Li true",
            "and",
            ".Li false ;",
            "comments from",
            ".Li #",
            "to the end of a line; LF or CRLF line ends; at most 1 MiB.",
            "Sizes take units",
            "(\\(dq64B\\(dq, \\(dq4KiB\\(dq, \\(dq1GiB\\(dq),",
            "rates a size per second or \\(dqunlimited\\(dq, durations a unit",
            "(\\(dq500us\\(dq, \\(dq1ms\\(dq, \\(dq60s\\(dq, \\(dq2min\\(dq, \\(dq24h\\(dq; \\(dq0\\(dq: off).",
            "An unknown section or key, a value of the wrong type or out of range, is an error that names",
            "the file, the line and the key;",
            ".Ic mirrord --check-config Ar file",
            "checks a file as a run would.",
            "On",
            ".Ic systemctl reload mirrord",
            "the keys marked reloadable take effect at the next pass or duplex; the others wait for a restart,",
            "and an invalid file keeps the running configuration in force.",
        ]
        for section in ConfigurationKeys.sections {
            out.append(".Sh \(escape("[\(section)]").uppercased())")
            out.append(".Bl -tag -width Ds")
            for key in ConfigurationKeys.all where key.section == section {
                out.append(".It Cm \(key.key) No = Li \(escape(key.defaultValue))")
                if let text = descriptions[key.name], !text.isEmpty {
                    out.append(contentsOf: sentences(text.joined(separator: " ")).flatMap { wrap($0) }.map(escapeLine))
                } else {
                    out.append("As described for the key above.")
                }
                out.append(
                    contentsOf: wrap(
                        "Takes \(key.type); \(key.reloadable ? "a reload applies it" : "applied at the next start")."
                    ).map(escapeLine))
            }
            out.append(".El")
        }
        out += [
            ".Sh ENVIRONMENT",
            "Any key can be overridden by",
            ".Ev MIRRORD_ Ns Ar SECTION Ns _ Ns Ar KEY ,",
            "for example",
            ".Ev MIRRORD_MEMORY_SIZE Ns =4GiB .",
            ".Sh FILES",
            ".Bl -tag -width Ds",
            ".It Pa /etc/mirrord/mirrord.conf",
            "the daemon's configuration (installed with every key at its default).",
            ".El",
            ".Sh SEE ALSO",
            ".Xr systemd.service 5 ,",
            ".Xr mirrorctl 8 ,",
            ".Xr mirrord 8",
        ]
        return out.joined(separator: "\n") + "\n"
    }

    /// The comment lines above each key of the defaults file, by `section.key`.
    static func describe(_ text: String) -> [String: [String]] {
        var section = ""
        var comments: [String] = []
        var result: [String: [String]] = [:]
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingSpaces()
            if line.hasPrefix("#") {
                comments.append(line.drop { $0 == "#" }.trimmingSpaces())
            } else if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix { $0 != "]" })
                comments = []
            } else if let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingSpaces()
                result["\(section).\(key)"] = comments
                comments = []
            } else if line.isEmpty {
                continue
            }
        }
        return result
    }

    /// `text` cut into sentences, each to start a line (mdoc's rule).
    static func sentences(_ text: String) -> [String] {
        var result: [String] = []
        var current = ""
        let words = text.split(separator: " ")
        for (i, word) in words.enumerated() {
            current += current.isEmpty ? String(word) : " " + word
            let next = i + 1 < words.count ? words[i + 1] : nil
            if let last = word.last, ".?!".contains(last), let next, let first = next.first,
                first.isUppercase || first == "\""
            {
                result.append(current)
                current = ""
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// `line` wrapped at 78 bytes on spaces.
    static func wrap(_ line: String) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in line.split(separator: " ") {
            if !current.isEmpty && current.utf8.count + 1 + word.utf8.count > 78 {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? String(word) : " " + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// Text safe inside an mdoc line.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "\"", with: "\\(dq")
    }

    /// A text line safe in mdoc (none starts with a dot or an apostrophe).
    static func escapeLine(_ text: String) -> String {
        let line = escape(text)
        return line.hasPrefix(".") || line.hasPrefix("'") ? "\\&" + line : line
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
