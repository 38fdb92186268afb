import Foundation
import MirrorCore

/// An SVG picture of the convergence section: for each workload and size, the blackout under each
/// policy (log scale, with the 1 ms target) and the workload's slowdown (its store rate during the
/// duplex as a share of before).
struct PolicyPlot {
    let results: [ConvergenceResult]

    static let colors = ["none": "#999999", "throttle": "#d9822b", "dirty-limit": "#1f5fa8"]

    var svg: String {
        let groups = results.reduce(into: [String]()) { names, r in
            let name = "\(r.workload) \(ByteCount.format(r.memoryBytes))"
            if names.last != name { names.append(name) }
        }
        let policies = ["none", "throttle", "dirty-limit"]
        let width = 120.0 + Double(groups.count) * 72
        let left = 70.0
        let panel = 220.0
        let top = 50.0
        let gap = 70.0
        let height = top + panel * 2 + gap + 70
        let groupWidth = (width - left - 20) / Double(max(1, groups.count))
        let barWidth = groupWidth / 4
        let maxBlackout = max(2_000.0, Double(results.map(\.blackoutMicroseconds).max() ?? 1))
        func yBlackout(_ us: Double) -> Double {
            top + panel * (1 - log10(max(10, us) / 10) / log10(maxBlackout * 1.5 / 10))
        }
        func ySlowdown(_ s: Double) -> Double { top + panel + gap + panel * (1 - min(1.1, s) / 1.1) }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="20" text-anchor="middle" font-size="14">mirrord: blackout and workload slowdown per convergence policy</text>

            """
        for (i, policy) in policies.enumerated() {
            let x = left + Double(i) * 110
            s +=
                "<rect x=\"\(x)\" y=\"30\" width=\"10\" height=\"10\" fill=\"\(Self.colors[policy]!)\"/><text x=\"\(x + 14)\" y=\"39\">\(policy)</text>\n"
        }
        for tick in [10.0, 100, 1_000, 10_000, 100_000] where tick <= maxBlackout * 1.5 {
            let y = yBlackout(tick)
            s +=
                "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - 20)\" y2=\"\(y)\" stroke=\"#eee\"/><text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(tick >= 1_000 ? "\(Int(tick / 1_000)) ms" : "\(Int(tick)) µs")</text>\n"
        }
        let target = yBlackout(1_000)
        s +=
            "<line x1=\"\(left)\" y1=\"\(target)\" x2=\"\(width - 20)\" y2=\"\(target)\" stroke=\"#c33\" stroke-dasharray=\"6 4\"/>"
        s += "<text x=\"\(width - 22)\" y=\"\(target - 4)\" text-anchor=\"end\" fill=\"#c33\">target 1 ms</text>\n"
        s +=
            "<text x=\"16\" y=\"\(top + panel / 2)\" transform=\"rotate(-90 16 \(top + panel / 2))\" text-anchor=\"middle\">blackout (log)</text>\n"
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let y = ySlowdown(tick)
            s +=
                "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - 20)\" y2=\"\(y)\" stroke=\"#eee\"/><text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(tick)</text>\n"
        }
        let slowdownMiddle = top + panel + gap + panel / 2
        s +=
            "<text x=\"16\" y=\"\(slowdownMiddle)\" transform=\"rotate(-90 16 \(slowdownMiddle))\" text-anchor=\"middle\">store rate, share of before</text>\n"
        for (g, group) in groups.enumerated() {
            let x0 = left + Double(g) * groupWidth + barWidth / 2
            for (p, policy) in policies.enumerated() {
                guard
                    let r = results.first(where: {
                        "\($0.workload) \(ByteCount.format($0.memoryBytes))" == group && $0.policy == policy
                    })
                else { continue }
                let x = x0 + Double(p) * barWidth
                let color = Self.colors[policy]!
                let yb = yBlackout(Double(r.blackoutMicroseconds))
                s +=
                    "<rect x=\"\(x)\" y=\"\(yb)\" width=\"\(barWidth - 2)\" height=\"\(top + panel - yb)\" fill=\"\(color)\"/>\n"
                if let slowdown = r.workloadSlowdown {
                    let ys = ySlowdown(slowdown)
                    s +=
                        "<rect x=\"\(x)\" y=\"\(ys)\" width=\"\(barWidth - 2)\" height=\"\(top + panel * 2 + gap - ys)\" fill=\"\(color)\"/>\n"
                }
            }
            let label = top + panel * 2 + gap + 16
            // The workload on one line and the size under it, so that long names do not run together.
            let words = group.split(separator: " ")
            for (line, text) in [words.dropLast().joined(separator: " "), words.last.map(String.init) ?? ""]
                .enumerated()
            {
                s +=
                    "<text x=\"\(x0 + barWidth * 1.5)\" y=\"\(label + Double(line * 13))\" text-anchor=\"middle\">\(text)</text>\n"
            }
        }
        s += "</svg>\n"
        return s
    }
}
