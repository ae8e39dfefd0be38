//! Examples of embedding vigil in your own program.
//!
//! [`WaveProvider`] is a [`DataProvider`] of your own: here it makes a wavy price series in
//! memory; in real use it would wrap your broker's or vendor's feed. The example
//! `custom_data_provider` runs the full six-agent session on it:
//!
//! ```text
//! cargo run -p vigil-examples --example custom_data_provider
//! ```

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use vigil_core::{Bar, Symbol, SymbolId};
use vigil_session::{DataProvider, MarketDataEvent, ProviderError, ProviderHealth};

/// A provider that makes `bars` hourly bars of a wave around 100 for one symbol.
#[derive(Debug)]
pub struct WaveProvider {
    symbol: SymbolId,
    start: DateTime<Utc>,
    bars: u64,
    next: u64,
    connected: bool,
    last: Option<DateTime<Utc>>,
}

impl WaveProvider {
    /// Creates the provider; bars start at `start`, one an hour.
    pub fn new(start: DateTime<Utc>, bars: u64) -> Self {
        Self {
            symbol: SymbolId(0),
            start,
            bars,
            next: 0,
            connected: false,
            last: None,
        }
    }

    fn bar(&self, i: u64) -> Bar {
        // Cents as integers: the wave is a statistic, prices are exact once quantised.
        let cents = |x: f64| Decimal::new((x * 100.0).round() as i64, 2);
        let t = i as f64;
        let mid = 100.0 + 10.0 * (t / 40.0).sin() + 3.0 * (t / 7.0).sin();
        let prev = 100.0 + 10.0 * ((t - 1.0) / 40.0).sin() + 3.0 * ((t - 1.0) / 7.0).sin();
        let (open, close) = (cents(prev), cents(mid));
        Bar {
            symbol: self.symbol,
            ts: self.start + Duration::hours(i as i64),
            open,
            high: open.max(close) + Decimal::new(5, 2),
            low: open.min(close) - Decimal::new(5, 2),
            close,
            volume: Some(Decimal::from(10_000)),
        }
    }
}

#[async_trait]
impl DataProvider for WaveProvider {
    fn name(&self) -> &str {
        "wave"
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        self.connected = true;
        Ok(())
    }

    /// The wave is computed in process: it answers while connected.
    async fn ping(&mut self) -> Result<(), ProviderError> {
        if self.connected {
            Ok(())
        } else {
            Err(ProviderError::Connect {
                provider: "wave".into(),
                reason: "not connected".into(),
            })
        }
    }

    async fn subscribe(&mut self, symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        match symbols {
            [(id, _)] => {
                self.symbol = *id;
                Ok(())
            }
            _ => Err(ProviderError::UnknownSymbol {
                provider: "wave".into(),
                symbol: format!("{} symbols; the wave serves exactly one", symbols.len()),
            }),
        }
    }

    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        let end = (self.next + max as u64).min(self.bars);
        for i in self.next..end {
            let bar = self.bar(i);
            self.last = Some(bar.ts);
            out.push(MarketDataEvent::Bar(bar));
        }
        self.next = end;
        Ok(self.next < self.bars)
    }

    fn health(&self) -> ProviderHealth {
        ProviderHealth {
            connected: self.connected,
            last_event_at: self.last,
            events: self.next,
            errors: 0,
        }
    }
}

/// Runs a session on the wave and returns its outcome (what the example prints).
///
/// # Errors
/// Fails when the session cannot start (see `vigil_session::Session::start`).
pub fn run_wave_session(
    log_dir: &std::path::Path,
    bars: u64,
) -> Result<vigil_session::SessionOutcome, vigil_session::SystemError> {
    let mut cfg = vigil_config::VigilConfig::embedded_default();
    cfg.session.name = "wave-example".into();
    cfg.data.instruments = vec![vigil_config::InstrumentConfig {
        symbol: "WAVE".into(),
        path: "custom:wave".into(),
        check_gaps: None,
    }];
    cfg.log.dir = log_dir.to_path_buf();
    cfg.store.path = log_dir.join("state.db");
    let start = DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default(); // 2024-01-01
    let opts = vigil_session::SessionOptions::new(cfg)
        .with_provider(Box::new(WaveProvider::new(start, bars)), start);
    vigil_session::run(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_custom_provider_example_trades_the_wave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outcome = run_wave_session(dir.path(), 2_000).expect("session");
        let s = &outcome.summary;
        assert_eq!(s.error, None);
        assert_eq!(s.bars, 2_000);
        assert!(s.signals > 10, "{s:?}");
        assert!(s.fills > 10);
        assert_eq!(s.source, "wave");
    }
}
