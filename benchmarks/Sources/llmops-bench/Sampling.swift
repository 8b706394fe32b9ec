#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// SplitMix64: a small generator with a fixed algorithm, so that a seed gives the same
/// figures on every machine and Swift version (the standard library's generator is unseeded).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// Returns a uniform number in the open interval (0, 1), made from the top 53 bits.
    mutating func nextUnit() -> Double {
        (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992
    }

    /// Returns a standard normal number by the Box–Muller transform.
    mutating func nextNormal() -> Double {
        let radius = (-2 * log(nextUnit())).squareRoot()
        return radius * cos(2 * Double.pi * nextUnit())
    }

    /// Returns a Gamma(shape, 1) number by the Marsaglia–Tsang method. Shapes below 1 use
    /// the boost Gamma(shape + 1) · U^(1/shape).
    mutating func nextGamma(shape: Double) -> Double {
        if shape < 1 {
            return nextGamma(shape: shape + 1) * pow(nextUnit(), 1 / shape)
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0
            var v = 0.0
            repeat {
                x = nextNormal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextUnit()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) {
                return d * v
            }
        }
    }

    /// Returns a Beta number with the given mean (clamped to 0.005...0.995) and concentration α + β.
    mutating func nextBeta(mean: Double, concentration: Double) -> Double {
        let clamped = min(max(mean, 0.005), 0.995)
        let x = nextGamma(shape: clamped * concentration)
        let y = nextGamma(shape: (1 - clamped) * concentration)
        return x / (x + y)
    }
}

/// Derives an independent seed for one part of the simulation from the run's seed.
func derivedSeed(_ seed: UInt64, _ parts: Int...) -> UInt64 {
    var generator = SeededGenerator(seed: seed)
    var value = generator.next()
    for part in parts {
        generator = SeededGenerator(seed: value ^ UInt64(truncatingIfNeeded: part &* 0x2545_F491))
        value = generator.next()
    }
    return value
}

/// Returns the 95% Wilson score interval of a proportion.
func wilsonInterval(successes: Int, trials: Int) -> ClosedRange<Double> {
    guard trials > 0 else { return 0...1 }
    let z = 1.959_963_985
    let n = Double(trials)
    let p = Double(successes) / n
    let centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    let spread = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / (1 + z * z / n)
    return max(0, centre - spread)...min(1, centre + spread)
}
