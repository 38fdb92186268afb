import Foundation

/// An SVG picture of the blackout's tail: for each size, the share of samples whose
/// `blackout_ratio` exceeds x (log scale, down to one sample), with the bounds at 1.5 (p99.9)
/// and 2.0 (max) drawn in.
struct TailPlot {
    let result: TailResult

    var svg: String {
        let width = 720.0
        let height = 400.0
        let left = 80.0
        let right = 30.0
        let top = 44.0
        let bottom = 56.0
        let sizes = TailBench.targetFrames.map { target in
            (target, result.samples.filter { $0.targetFrames == target }.map(\.blackoutRatio).sorted())
        }
        let largest = result.samples.map(\.blackoutRatio).max() ?? 1
        let xMax = max(2.5, (largest * 1.1 * 2).rounded(.up) / 2)
        let smallest = 1 / Double(max(1, sizes.map(\.1.count).max() ?? 1))
        let logMin = floor(log10(smallest))
        func x(_ ratio: Double) -> Double { left + (width - left - right) * min(ratio, xMax) / xMax }
        func y(_ share: Double) -> Double {
            top + (height - top - bottom) * (log10(max(share, pow(10, logMin))) / logMin)
        }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="14">mirrord: blackout against its floor, \(result.samples.count) blackouts of 1 GiB under the default workload</text>

            """
        var decade = 0.0
        while decade >= logMin {
            let yy = y(pow(10, decade))
            let label = decade == 0 ? "all" : "1 in \(Int(pow(10, -decade)))"
            s += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(width - right)\" y2=\"\(yy)\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(label)</text>\n"
            decade -= 1
        }
        var tick = 0.0
        while tick <= xMax {
            s += "<text x=\"\(x(tick))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(format(tick))</text>"
            tick += 0.5
        }
        for (bound, label, anchor) in [(1.5, "p99.9 ≤ 1.5", "end"), (2.0, "max ≤ 2.0", "start")] {
            s +=
                "\n<line x1=\"\(x(bound))\" y1=\"\(top)\" x2=\"\(x(bound))\" y2=\"\(height - bottom)\" stroke=\"#c33\" stroke-dasharray=\"6 4\"/>"
            let at = anchor == "end" ? x(bound) - 4 : x(bound) + 4
            s +=
                "<text x=\"\(at)\" y=\"\(height - bottom - 8)\" text-anchor=\"\(anchor)\" fill=\"#c33\">\(label)</text>"
        }
        let colours = ["#1f5fa8", "#e08a00"]
        for (index, (target, ratios)) in sizes.enumerated() where !ratios.isEmpty {
            // A step down at each sample: the share of samples above each ratio.
            var points: [String] = []
            for (i, ratio) in ratios.enumerated() {
                // The tail sample by sample; the body (all but the top 100) every tenth.
                guard i >= ratios.count - 100 || i % 10 == 0 else { continue }
                let above = Double(ratios.count - i) / Double(ratios.count)
                points.append("\(x(ratio)),\(y(above))")
                points.append("\(x(ratio)),\(y(above - 1 / Double(ratios.count)))")
            }
            let colour = colours[index % colours.count]
            s +=
                "\n<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
            s +=
                "<text x=\"\(width - right - 8)\" y=\"\(top + 16 + 16 * Double(index))\" text-anchor=\"end\" fill=\"\(colour)\">~\(target) final frames (\(ratios.count))</text>"
        }
        s +=
            "\n<text x=\"\(Int(width / 2))\" y=\"\(Int(height - 12))\" text-anchor=\"middle\">blackout_ratio (the blackout over the stop plus its frames at one thread's memcpy)</text>\n"
        s +=
            "<text x=\"18\" y=\"\(Int(height / 2))\" transform=\"rotate(-90 18 \(Int(height / 2)))\" text-anchor=\"middle\">share of blackouts above (log)</text>\n"
        s += "</svg>\n"
        return s
    }

    private func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
