//! Stage 2 of the start: choose the data provider and where market time starts.
//!
//! The operator's own provider wins; otherwise a `[data.feed]` (with its backups and their
//! secrets), otherwise the configured CSV files, whose first bars are read here so that a
//! missing file or a bad header stops the start before anything else opens.

use std::path::PathBuf;

use vigil_config::{BUNDLED_PREFIX, VigilConfig};
use vigil_core::{
    Bar, FutureGuard, SharedClock, SimClock, Symbol, SymbolId, SymbolTable, Timestamp,
};
use vigil_providers::{
    CsvBarReader, CsvReplayProvider, CsvSource, DataProvider, WsFeedConfig, WsFeedProvider,
};

use super::SystemError;
use crate::bundled::{BUNDLED_FILES, bundled};

/// Where the bars come from, as the config and the options decide it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProviderKind {
    /// A provider the embedding program passed in (`SessionOptions::provider`).
    Own,
    /// `[data.feed]`: a live WebSocket feed, with its backups.
    Feed,
    /// The configured CSV files (or the bundled data), replayed.
    Csv,
}

/// Decides where the bars come from: the caller's provider first, then a feed, then files.
pub(super) fn provider_kind(cfg: &VigilConfig, own: bool) -> ProviderKind {
    if own {
        ProviderKind::Own
    } else if cfg.data.feed.is_some() {
        ProviderKind::Feed
    } else {
        ProviderKind::Csv
    }
}

/// The chosen provider and what goes with it.
pub(super) struct ChosenProvider {
    /// The instruments, in config order (their ids are the provider's symbol ids).
    pub(super) symbols: SymbolTable,
    /// The provider the Data agent reads.
    pub(super) provider: Box<dyn DataProvider>,
    /// The market clock: at the first bar for files, at the wall until the first bar for a
    /// feed (so that nothing is stamped 1970).
    pub(super) market: SimClock,
    /// Sources without a volume column: (symbol, source name).
    pub(super) unknown_volume: Vec<(SymbolId, String)>,
    /// The backup feeds' providers, in config order (none without a feed).
    pub(super) backups: Vec<Box<dyn DataProvider>>,
    /// The `[data.cross_check]` reference feed.
    pub(super) reference: Option<Box<dyn DataProvider>>,
}

/// Chooses the provider (see [`provider_kind`]), reads the feeds' secrets (each pushed to
/// `read` as it is read, for the error text to redact) and opens the CSV files' first bars.
///
/// # Errors
/// A secret file cannot be read, a bundled file does not exist, or a CSV file cannot be
/// opened or its first row is bad.
pub(super) fn choose(
    cfg: &VigilConfig,
    own: Option<(Box<dyn DataProvider>, Option<Timestamp>)>,
    wall: &SharedClock,
    read: &mut Vec<String>,
) -> Result<ChosenProvider, SystemError> {
    let feed_secrets = feed_secrets(cfg)?;
    read.extend(feed_secrets.iter().cloned());
    let reference = cross_check_reference(cfg, wall, read)?;
    let backups = match &cfg.data.feed {
        Some(feed) => feed
            .backups
            .iter()
            .zip(feed_secrets.iter().skip(1))
            .map(|(b, secret)| feed_provider(b, secret, cfg, wall))
            .collect(),
        None => Vec::new(),
    };
    let kind = provider_kind(cfg, own.is_some());
    let (provider, start, unknown_volume, symbols): (Box<dyn DataProvider>, _, _, _) =
        match (kind, own) {
            (ProviderKind::Own, Some((p, start))) => (p, start, Vec::new(), symbol_table(cfg)),
            (ProviderKind::Feed, _) => {
                let (feed, secret) = cfg
                    .data
                    .feed
                    .as_ref()
                    .zip(feed_secrets.first())
                    .ok_or_else(|| {
                        SystemError::Data("data.feed: its secret was not read".into())
                    })?;
                (
                    feed_provider(feed, secret, cfg, wall),
                    None,
                    Vec::new(),
                    symbol_table(cfg),
                )
            }
            _ => {
                let (symbols, sources) = sources(cfg)?;
                let first = first_bars(&sources)?;
                let start = first.at.unwrap_or_else(|| wall.now());
                (
                    Box::new(CsvReplayProvider::new(sources, cfg.data.batch_size)),
                    Some(start),
                    first.unknown_volume,
                    symbols,
                )
            }
        };
    let market = match start {
        Some(start) => SimClock::starting_at(start),
        None => SimClock::unset(wall.clone()),
    };
    Ok(ChosenProvider {
        symbols,
        provider,
        market,
        unknown_volume,
        backups,
        reference,
    })
}

/// The instruments of the config, in order: symbol id `i` is `data.instruments[i]`.
pub(super) fn symbol_table(cfg: &VigilConfig) -> SymbolTable {
    SymbolTable::new(
        cfg.data
            .instruments
            .iter()
            .map(|i| Symbol::from(i.symbol.as_str())),
    )
}

fn sources(cfg: &VigilConfig) -> Result<(SymbolTable, Vec<CsvSource>), SystemError> {
    let symbols = symbol_table(cfg);
    let mut out = Vec::new();
    for (i, inst) in cfg.data.instruments.iter().enumerate() {
        let id = SymbolId(i as u32);
        let src = match inst.path.strip_prefix(BUNDLED_PREFIX) {
            Some(name) => {
                let bytes = bundled(name).ok_or_else(|| {
                    SystemError::Data(format!(
                        "data.instruments[{i}].path: no bundled file {name:?}; bundled: {}",
                        BUNDLED_FILES.join(", ")
                    ))
                })?;
                CsvSource::bytes(id, inst.path.clone(), bytes)
            }
            None => CsvSource::file(id, PathBuf::from(&inst.path)),
        };
        out.push(src);
    }
    Ok((symbols, out))
}

/// What the start learns from the first bar of every source.
struct FirstBars {
    /// Where the replay's market clock starts (none: no source has a bar).
    at: Option<Timestamp>,
    /// The sources without a volume column: (symbol, source name).
    unknown_volume: Vec<(SymbolId, String)>,
}

/// Reads the first bar of every source: fails fast on a missing file or a bad header, finds
/// where the replay's market clock starts, and which sources have no volume column.
fn first_bars(sources: &[CsvSource]) -> Result<FirstBars, SystemError> {
    let mut first: Option<Timestamp> = None;
    let mut unknown_volume = Vec::new();
    let mut buf: Vec<Bar> = Vec::with_capacity(1);
    for src in sources {
        let mut reader = CsvBarReader::open(src).map_err(|e| SystemError::Data(e.to_string()))?;
        if !reader.has_volume() {
            unknown_volume.push((src.symbol(), src.display_name().to_string()));
        }
        buf.clear();
        reader
            .read_batch(1, &mut buf)
            .map_err(|e| SystemError::Data(e.to_string()))?;
        if let Some(b) = buf.first() {
            first = Some(first.map_or(b.ts, |f| f.min(b.ts)));
        }
    }
    Ok(FirstBars {
        at: first,
        unknown_volume,
    })
}

/// The `[data.feed]` secrets, read from their files: the feed's, then each backup's
/// (none without a feed).
fn feed_secrets(cfg: &VigilConfig) -> Result<Vec<String>, SystemError> {
    let Some(f) = &cfg.data.feed else {
        return Ok(Vec::new());
    };
    let mut out = vec![
        read_secret("data.feed.secret_file", &f.secret_file)
            .map_err(|e| SystemError::Data(e.to_string()))?,
    ];
    for (i, b) in f.backups.iter().enumerate() {
        out.push(
            read_secret(
                &format!("data.feed.backups[{i}].secret_file"),
                &b.secret_file,
            )
            .map_err(|e| SystemError::Data(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The `[data.cross_check]` reference feed, with its secret read from its file and pushed to
/// `read` (none when the cross-check is off).
fn cross_check_reference(
    cfg: &VigilConfig,
    wall: &SharedClock,
    read: &mut Vec<String>,
) -> Result<Option<Box<dyn DataProvider>>, SystemError> {
    let Some(x) = &cfg.data.cross_check else {
        return Ok(None);
    };
    let secret = read_secret("data.cross_check.secret_file", &x.secret_file)
        .map_err(|e| SystemError::Data(e.to_string()))?;
    let provider: Box<dyn DataProvider> = Box::new(WsFeedProvider::new(
        WsFeedConfig::new(x.url.clone(), x.key_id.clone(), &secret)
            .with_future_guard(FutureGuard::new(wall.clone(), future_tolerance(cfg))),
    ));
    read.push(secret);
    Ok(Some(provider))
}

/// The provider of one feed; it rejects bars from the future by `wall`.
fn feed_provider(
    feed: &vigil_config::FeedConfig,
    secret: &str,
    cfg: &VigilConfig,
    wall: &SharedClock,
) -> Box<dyn DataProvider> {
    Box::new(WsFeedProvider::new(
        WsFeedConfig::new(feed.url.clone(), feed.key_id.clone(), secret)
            .with_future_guard(FutureGuard::new(wall.clone(), future_tolerance(cfg))),
    ))
}

/// How far ahead of the wall clock a bar may be (`data.future_tolerance_s`).
pub(super) fn future_tolerance(cfg: &VigilConfig) -> chrono::Duration {
    // Validated to at most a day.
    chrono::Duration::seconds(i64::try_from(cfg.data.future_tolerance_s).unwrap_or(86_400))
}

/// A secret file's one line, trimmed; the error names the config key (or flag) and the file.
/// Every secret file goes through [`vigil_config::read_secret_file`]: one that group or
/// others may read is refused.
///
/// # Errors
/// The file cannot be read, group or others may read it, or it holds nothing but
/// whitespace.
pub fn read_secret(
    key: &str,
    path: &std::path::Path,
) -> Result<String, vigil_config::SecretFileError> {
    vigil_config::read_secret_file(key, path)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vigil_core::{Clock, SystemClock};

    use super::*;

    fn config() -> VigilConfig {
        VigilConfig::embedded_default()
    }

    fn wall() -> SharedClock {
        Arc::new(SystemClock)
    }

    #[test]
    fn the_callers_provider_wins_then_a_feed_then_the_files() {
        let cfg = config();
        assert_eq!(provider_kind(&cfg, true), ProviderKind::Own);
        assert_eq!(provider_kind(&cfg, false), ProviderKind::Csv);
        let mut feed = cfg.clone();
        feed.data.feed = Some(
            toml::from_str("url = \"ws://127.0.0.1:1/\"\nkey_id = \"k\"\nsecret_file = \"s\"")
                .expect("a feed section parses"),
        );
        assert_eq!(provider_kind(&feed, false), ProviderKind::Feed);
        assert_eq!(provider_kind(&feed, true), ProviderKind::Own);
    }

    #[test]
    fn replayed_files_start_the_market_clock_at_their_first_bar() {
        let cfg = config();
        let mut read = Vec::new();
        let chosen = choose(&cfg, None, &wall(), &mut read).expect("the bundled data opens");
        let first = chosen.market.now();
        assert!(
            first < SystemClock.now() - chrono::Duration::days(30),
            "the bundled data is history, its first bar is not now: {first}"
        );
        assert_eq!(chosen.symbols.len(), cfg.data.instruments.len());
        assert!(read.is_empty(), "no secret is read for files");
        assert!(chosen.backups.is_empty() && chosen.reference.is_none());
    }

    #[test]
    fn a_csv_without_volume_is_reported_once_and_an_unknown_bundled_file_is_named() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("novol.csv");
        std::fs::write(
            &path,
            "timestamp,open,high,low,close\n2024-01-02T14:30:00Z,1,2,0.5,1.5\n",
        )
        .expect("the file is written");
        let mut cfg = config();
        cfg.data.instruments.truncate(1);
        cfg.data.instruments[0].path = path.display().to_string();
        let chosen = choose(&cfg, None, &wall(), &mut Vec::new()).expect("the file opens");
        assert_eq!(chosen.unknown_volume.len(), 1);
        assert_eq!(chosen.unknown_volume[0].0, SymbolId(0));

        cfg.data.instruments[0].path = format!("{BUNDLED_PREFIX}nope.csv");
        let err = choose(&cfg, None, &wall(), &mut Vec::new())
            .err()
            .expect("an unknown bundled file is refused")
            .to_string();
        assert!(
            err.contains("data.instruments[0].path") && err.contains("nope.csv"),
            "{err}"
        );
    }

    #[test]
    fn a_feed_starts_the_market_clock_unset_and_its_secret_is_collected() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let secret = dir.path().join("feed.secret");
        std::fs::write(&secret, "s3cret-feed-value\n").expect("the secret is written");
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("the secret is private");
        let mut cfg = config();
        cfg.data.feed = Some(
            toml::from_str(&format!(
                "url = \"ws://127.0.0.1:1/\"\nkey_id = \"k\"\nsecret_file = {:?}",
                secret.display().to_string()
            ))
            .expect("a feed section parses"),
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T14:31:00Z")
            .expect("a time")
            .to_utc();
        let wall: SharedClock = Arc::new(SimClock::starting_at(at));
        let mut read = Vec::new();
        let chosen = choose(&cfg, None, &wall, &mut read).expect("the feed is chosen");
        assert_eq!(read, vec!["s3cret-feed-value".to_string()]);
        assert!(chosen.unknown_volume.is_empty());
        assert_eq!(
            chosen.market.now(),
            at,
            "a feed's market clock tells the wall time until its first bar"
        );
        let later = at + chrono::Duration::minutes(1);
        chosen.market.advance_to(later);
        assert_eq!(chosen.market.now(), later);
    }
}
