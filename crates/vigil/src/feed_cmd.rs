//! `vigil feed`: the market-data feed process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use vigil_feed::{FeedOptions, Pacing};

#[derive(Debug, clap::Args)]
pub(crate) struct FeedArgs {
    /// Address to serve on, `HOST:PORT` (port 0 picks a free one; the bound address is
    /// printed). The stream is `ws://HOST:PORT/stream`; control and faults are on the same
    /// port.
    #[arg(long)]
    listen: String,
    /// A bars CSV file to replay (columns by header name, as for `vigil run --data`);
    /// repeat for more symbols, merged in time order.
    #[arg(long = "csv", value_name = "FILE", required = true)]
    csv: Vec<PathBuf>,
    /// The symbol of each --csv file, in the same order (default: the file name up to the
    /// first '_' or '.').
    #[arg(long = "symbol", value_name = "SYMBOL")]
    symbol: Vec<String>,
    /// Wall-clock milliseconds between bars; 0 sends them as fast as the clients read.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Send bars only when asked (`POST /_feed/step?n=K`), for tests.
    #[arg(long, conflicts_with = "interval_ms")]
    manual: bool,
    /// API key id clients must send in their `auth` message (and the control endpoints in
    /// `APCA-API-KEY-ID`); with --secret-file.
    #[arg(long, requires = "secret_file")]
    key_id: Option<String>,
    /// File holding the API secret clients must send.
    #[arg(long, requires = "key_id")]
    secret_file: Option<PathBuf>,
}

/// The file name up to the first '_' or '.', as `vigil run --data` names its symbol.
fn default_symbol(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.split(['_', '.'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("DATA")
        .to_string()
}

fn sources(args: &FeedArgs) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !args.symbol.is_empty() && args.symbol.len() != args.csv.len() {
        bail!(
            "--symbol is given {} time(s) for {} --csv file(s): give one per file, or none",
            args.symbol.len(),
            args.csv.len()
        );
    }
    Ok(args
        .csv
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let symbol = args
                .symbol
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_symbol(path));
            (symbol, path.clone())
        })
        .collect())
}

fn pacing(args: &FeedArgs) -> Pacing {
    match (args.manual, args.interval_ms) {
        (true, _) => Pacing::Manual,
        (false, 0) => Pacing::AsFastAsRead,
        (false, ms) => Pacing::Interval(Duration::from_millis(ms)),
    }
}

/// Runs the feed until SIGINT or SIGTERM.
pub(crate) fn run(args: FeedArgs) -> anyhow::Result<ExitCode> {
    let sources = sources(&args)?;
    let served: Vec<String> = sources
        .iter()
        .map(|(s, p)| format!("{s} from {}", p.display()))
        .collect();
    let pacing = pacing(&args);
    let opts = FeedOptions {
        listen: args.listen.clone(),
        sources,
        pacing,
        credentials: crate::broker_cmd::api_credentials(&args.key_id, &args.secret_file)?,
    };
    vigil_feed::run(opts, |server| {
        eprintln!(
            "vigil feed: listening on {} (control and faults at {} /_feed /_faults); \
             serving {}; {pacing}; SIGINT or SIGTERM stops it",
            server.stream_url(),
            server.control_url(),
            served.join(", ")
        );
    })
    .context("vigil feed")?;
    eprintln!("vigil feed: stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        feed: FeedArgs,
    }

    fn parse(args: &[&str]) -> Result<FeedArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("feed").chain(args.iter().copied())).map(|c| c.feed)
    }

    #[test]
    fn symbols_default_to_the_file_names_or_pair_with_the_files() {
        let args = parse(&[
            "--listen",
            "x",
            "--csv",
            "data/GOOG_1d.csv",
            "--csv",
            "b/EURUSD_1h.csv",
        ])
        .expect("args");
        assert_eq!(
            sources(&args).expect("sources"),
            vec![
                ("GOOG".to_string(), PathBuf::from("data/GOOG_1d.csv")),
                ("EURUSD".to_string(), PathBuf::from("b/EURUSD_1h.csv"))
            ]
        );
        assert_eq!(pacing(&args), Pacing::Interval(Duration::from_secs(1)));
        let args = parse(&[
            "--listen",
            "x",
            "--csv",
            "a.csv",
            "--symbol",
            "X",
            "--interval-ms",
            "0",
        ])
        .expect("args");
        assert_eq!(sources(&args).expect("sources")[0].0, "X");
        assert_eq!(pacing(&args), Pacing::AsFastAsRead);
        let args = parse(&[
            "--listen", "x", "--csv", "a.csv", "--csv", "b.csv", "--symbol", "X",
        ])
        .expect("args");
        assert!(sources(&args).is_err());
        let args = parse(&["--listen", "x", "--csv", "a.csv", "--manual"]).expect("args");
        assert_eq!(pacing(&args), Pacing::Manual);
        assert!(
            parse(&[
                "--listen",
                "x",
                "--csv",
                "a.csv",
                "--manual",
                "--interval-ms",
                "5"
            ])
            .is_err()
        );
    }
}
