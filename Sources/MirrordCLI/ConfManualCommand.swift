import ArgumentParser
import Foundation
import MirrordConfig

/// `mirrord conf-manual`: prints `mirrord.conf(5)` in mdoc from the key table the loader uses
/// (`make man` installs it); hidden from `--help`, a build step rather than an operator's command.
struct ConfManualCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conf-manual", abstract: "Print mirrord.conf(5) in mdoc.", shouldDisplay: false)

    @Option(help: ArgumentHelp("The commented defaults file whose comments describe the keys.", valueName: "path"))
    var defaults = "config/mirrord.conf"

    @Option(help: "The page's date, as mdoc writes it.")
    var date = "December 2, 2026"

    func run() throws {
        guard let text = try? String(contentsOfFile: defaults, encoding: .utf8) else {
            throw ValidationError("cannot read --defaults \(defaults)")
        }
        print(ConfigurationManual.mdoc(defaultsFile: text, date: date), terminator: "")
    }
}
