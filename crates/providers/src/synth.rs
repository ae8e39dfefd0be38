//! Synthetic bars for tests and benchmarks (`vigil data synth`): a seeded geometric random
//! walk, byte-for-byte reproducible on any machine (splitmix64, no library RNG whose stream
//! could change between versions).

use std::io::{self, Write};

use chrono::{DateTime, Duration, Utc};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// Number of bars.
    pub bars: u64,
    /// Random seed: the same seed always writes the same bars.
    pub seed: u64,
    /// Time of the first bar.
    pub start: DateTime<Utc>,
    /// Time between bars.
    pub step: Duration,
    /// Open of the first bar, in cents.
    pub start_price_cents: i64,
    /// Standard deviation of one bar's log return.
    pub sigma: f64,
}

impl SynthSpec {
    /// One-minute bars from 2020-01-01T00:00Z, starting at 100.00, 0.1% per bar.
    pub fn minute_bars(bars: u64, seed: u64) -> Self {
        Self {
            bars,
            seed,
            start: DateTime::from_timestamp(1_577_836_800, 0).unwrap_or_default(),
            step: Duration::minutes(1),
            start_price_cents: 10_000,
            sigma: 0.001,
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn cents(out: &mut impl Write, c: i64) -> io::Result<()> {
    write!(out, "{}.{:02}", c / 100, c % 100)
}

/// Writes the CSV (`timestamp,open,high,low,close,volume`) of `spec` to `out`.
///
/// # Errors
/// Fails when `out` cannot be written.
pub fn write_bars(spec: &SynthSpec, mut out: impl Write) -> io::Result<()> {
    let mut rng = SplitMix(spec.seed);
    writeln!(out, "timestamp,open,high,low,close,volume")?;
    let mut close = spec.start_price_cents;
    let mut ts = spec.start;
    for _ in 0..spec.bars {
        let open = close;
        let r = spec.sigma * rng.normal();
        // The walk is a statistic; prices are quantised to whole cents, never below 1.00.
        let next = ((open as f64) * r.exp()).round().max(100.0) as i64;
        let wick_hi =
            ((open.max(next) as f64) * (spec.sigma * rng.normal().abs() / 2.0)).round() as i64;
        let wick_lo =
            ((open.min(next) as f64) * (spec.sigma * rng.normal().abs() / 2.0)).round() as i64;
        let high = open.max(next) + wick_hi;
        let low = (open.min(next) - wick_lo).max(1);
        let volume = 1_000 + (rng.next() % 9_000);
        write!(out, "{},", ts.format("%Y-%m-%dT%H:%M:%SZ"))?;
        cents(&mut out, open)?;
        out.write_all(b",")?;
        cents(&mut out, high)?;
        out.write_all(b",")?;
        cents(&mut out, low)?;
        out.write_all(b",")?;
        cents(&mut out, next)?;
        writeln!(out, ",{volume}")?;
        close = next;
        ts += spec.step;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_bars_are_consistent() {
        let spec = SynthSpec::minute_bars(2_000, 7);
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_bars(&spec, &mut a).expect("write");
        write_bars(&spec, &mut b).expect("write");
        assert_eq!(a, b);
        let text = String::from_utf8(a).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("timestamp,open,high,low,close,volume"));
        let mut n = 0;
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            let p: Vec<f64> = f[1..5].iter().map(|x| x.parse().expect("num")).collect();
            let (o, h, l, c) = (p[0], p[1], p[2], p[3]);
            assert!(l <= o.min(c) && h >= o.max(c) && l > 0.0, "{line}");
            n += 1;
        }
        assert_eq!(n, 2_000);
        let mut other = Vec::new();
        write_bars(&SynthSpec::minute_bars(2_000, 8), &mut other).expect("write");
        assert_ne!(text.as_bytes(), &other[..]);
    }
}
