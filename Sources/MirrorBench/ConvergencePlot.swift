import Foundation
import MirrorCore

/// An SVG picture of one duplex's convergence: dirty frames found by each pass (log scale), the
/// threshold, and the frames left for the blackout.
struct ConvergencePlot {
    let summary: DuplexSummary

    var svg: String {
        let width = 680.0
        let height = 360.0
        let left = 70.0
        let right = 70.0
        let top = 40.0
        let bottom = 50.0
        let values =
            summary.passes.map { Double(max(1, $0.dirtyFrames)) } + [Double(max(1, summary.blackout?.finalFrames ?? 1))]
        let maxValue = max(values.max() ?? 1, Double(summary.thresholdFrames)) * 1.5
        let logMax = log10(maxValue)
        func x(_ i: Int) -> Double { left + (width - left - right) * Double(i) / Double(max(1, values.count - 1)) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - log10(max(1, v)) / logMax) }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="14">mirrord: dirty frames per pass, \(ByteCount.format(summary.memoryBytes)), \(summary.passes.count) passes then the blackout</text>

            """
        var decade = 1.0
        while decade <= maxValue {
            let yy = y(decade)
            s += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(width - right)\" y2=\"\(yy)\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(Int(decade))</text>\n"
            decade *= 10
        }
        let ty = y(Double(summary.thresholdFrames))
        s +=
            "<line x1=\"\(left)\" y1=\"\(ty)\" x2=\"\(width - right)\" y2=\"\(ty)\" stroke=\"#c33\" stroke-dasharray=\"6 4\"/>"
        s +=
            "<text x=\"\(width - right)\" y=\"\(ty - 6)\" text-anchor=\"end\" fill=\"#c33\">threshold \(summary.thresholdFrames)</text>\n"
        let points = values.enumerated().map { "\(x($0.offset)),\(y($0.element))" }.joined(separator: " ")
        s += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>\n"
        for (i, v) in values.enumerated() {
            let last = i == values.count - 1
            s += "<circle cx=\"\(x(i))\" cy=\"\(y(v))\" r=\"4\" fill=\"\(last ? "#c33" : "#1f5fa8")\"/>"
            s +=
                "<text x=\"\(x(i))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(last ? "blackout" : "\(i + 1)")</text>"
            s += "<text x=\"\(x(i) + 6)\" y=\"\(y(v) - 8)\">\(Int(v))</text>\n"
        }
        s += "<text x=\"\(Int(width / 2))\" y=\"\(Int(height - 10))\" text-anchor=\"middle\">pass</text>\n"
        s +=
            "<text x=\"16\" y=\"\(Int(height / 2))\" transform=\"rotate(-90 16 \(Int(height / 2)))\" text-anchor=\"middle\">dirty frames (log)</text>\n"
        s += "</svg>\n"
        return s
    }
}
