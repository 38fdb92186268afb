import Foundation

/// Keeps the DocC articles of the three library products true: every Swift code block in them
/// must appear in this package's sources (which the compiler checks and this program runs), line
/// by line, indentation and blank lines aside. A line `// …` in a block stands for code left out.
enum ArticleCode {
    /// The catalogs whose articles are checked.
    static let catalogs = [
        "Sources/MirrorCore/MirrorCore.docc", "Sources/MirrorEmulation/MirrorEmulation.docc",
        "Sources/MirrorLinux/MirrorLinux.docc",
    ]

    /// The lines of `text` without their indentation, blank lines left out.
    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// The Swift code blocks of a Markdown text, each as runs of lines between the `// …` marks.
    static func codeBlocks(_ markdown: String) -> [[[String]]] {
        var blocks: [[[String]]] = []
        var current: [[String]]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil {
                if trimmed == "```swift" { current = [[]] }
            } else if trimmed == "```" {
                blocks.append(current!.filter { !$0.isEmpty })
                current = nil
            } else if trimmed == "// …" {
                current!.append([])
            } else if !trimmed.isEmpty {
                current![current!.count - 1].append(trimmed)
            }
        }
        return blocks
    }

    /// Whether `run` occurs as consecutive lines of `lines`.
    static func contains(_ lines: [String], _ run: [String]) -> Bool {
        guard run.count <= lines.count else { return false }
        return (0...(lines.count - run.count)).contains { lines[$0..<$0 + run.count].elementsEqual(run) }
    }

    /// Checks every article; returns whether each code block was found.
    static func run() throws -> Bool {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let root = here.appendingPathComponent("../../../..").standardized
        let files = FileManager.default
        let sources = try files.contentsOfDirectory(atPath: here.path).filter { $0.hasSuffix(".swift") }
            .map { lines(try String(contentsOf: here.appendingPathComponent($0), encoding: .utf8)) }
        var blocks = 0
        var missing: [String] = []
        for catalog in catalogs {
            let folder = root.appendingPathComponent(catalog)
            for article in try files.contentsOfDirectory(atPath: folder.path) where article.hasSuffix(".md") {
                let text = try String(contentsOf: folder.appendingPathComponent(article), encoding: .utf8)
                for (index, block) in codeBlocks(text).enumerated() {
                    blocks += 1
                    for run in block where !sources.contains(where: { contains($0, run) }) {
                        missing.append("\(catalog)/\(article), code block \(index + 1), from \"\(run[0])\"")
                    }
                }
            }
        }
        for place in missing { print("embed-test: article code not in Tests/EmbeddingPackage: \(place)") }
        print("embed-test: \(blocks) code blocks of the DocC articles checked against this package")
        return missing.isEmpty && blocks > 0
    }
}
