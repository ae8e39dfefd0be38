//! `vigil broker`: the paper broker process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use rust_decimal::Decimal;
use vigil_broker::{BrokerOptions, Credentials, EngineConfig};

#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    /// Address to serve on, `HOST:PORT` (port 0 picks a free one; the bound address is
    /// printed).
    #[arg(long)]
    listen: String,
    /// The SQLite state file: orders, fills, positions, cash, the market clock. Created
    /// when missing; an existing file is read back (its cash wins over --cash).
    #[arg(long)]
    state: PathBuf,
    /// `SYMBOL=PATH` of a CSV file to price SYMBOL from (the feed's file); repeat for more.
    #[arg(long = "data", value_name = "SYMBOL=PATH", required = true)]
    data: Vec<String>,
    /// Cash of a new account.
    #[arg(long, default_value = "100000")]
    cash: Decimal,
    /// Adverse slippage on market fills, in basis points.
    #[arg(long, default_value = "1")]
    slippage_bps: Decimal,
    /// Commission in basis points of a fill's notional.
    #[arg(long, default_value = "1")]
    commission_bps: Decimal,
    /// Smallest commission per fill.
    #[arg(long, default_value = "0")]
    commission_min: Decimal,
    /// Largest share of a bar's volume the fills on that bar may take, (0, 1].
    #[arg(long, default_value = "1")]
    max_volume_participation: Decimal,
    /// API key id every request must carry (`APCA-API-KEY-ID`); with --secret-file.
    #[arg(long, requires = "secret_file")]
    key_id: Option<String>,
    /// File holding the API secret key every request must carry (`APCA-API-SECRET-KEY`).
    #[arg(long, requires = "key_id")]
    secret_file: Option<PathBuf>,
}

fn data_arg(text: &str) -> anyhow::Result<(String, PathBuf)> {
    match text.split_once('=') {
        Some((symbol, path)) if !symbol.is_empty() && !path.is_empty() => {
            Ok((symbol.to_string(), PathBuf::from(path)))
        }
        _ => bail!("--data {text:?}: expected SYMBOL=PATH"),
    }
}

fn engine(args: &BrokerArgs) -> anyhow::Result<EngineConfig> {
    let bps_max = Decimal::from(1000);
    for (name, v) in [
        ("--slippage-bps", args.slippage_bps),
        ("--commission-bps", args.commission_bps),
    ] {
        if v < Decimal::ZERO || v > bps_max {
            bail!("{name} {v}: must be in [0, 1000]");
        }
    }
    if args.cash <= Decimal::ZERO {
        bail!("--cash {}: must be positive", args.cash);
    }
    if args.commission_min < Decimal::ZERO {
        bail!(
            "--commission-min {}: must not be negative",
            args.commission_min
        );
    }
    let p = args.max_volume_participation;
    if p <= Decimal::ZERO || p > Decimal::ONE {
        bail!("--max-volume-participation {p}: must be in (0, 1]");
    }
    Ok(EngineConfig {
        slippage_bps: args.slippage_bps,
        commission_bps: args.commission_bps,
        commission_min: args.commission_min,
        max_volume_participation: p,
        initial_cash: args.cash,
    })
}

/// The API key of `vigil broker` and `vigil feed`: `--key-id` with the secret read from
/// `--secret-file` (none without both).
pub(crate) fn api_credentials(
    key_id: &Option<String>,
    secret_file: &Option<std::path::PathBuf>,
) -> anyhow::Result<Option<Credentials>> {
    let (Some(key_id), Some(file)) = (key_id, secret_file) else {
        return Ok(None);
    };
    let secret = vigil_session::read_secret("--secret-file", file)?;
    Ok(Some(Credentials {
        key_id: key_id.clone(),
        secret,
    }))
}

/// Runs the broker until SIGINT or SIGTERM.
pub(crate) fn run(args: BrokerArgs) -> anyhow::Result<ExitCode> {
    let data = args
        .data
        .iter()
        .map(|d| data_arg(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = BrokerOptions {
        listen: args.listen.clone(),
        state: args.state.clone(),
        data,
        engine: engine(&args)?,
        credentials: api_credentials(&args.key_id, &args.secret_file)?,
    };
    let state = args.state.display().to_string();
    vigil_broker::run(opts, |server| {
        for symbol in server.unknown_volume() {
            eprintln!(
                "vigil broker: WARN {symbol}: no volume column: fills on its bars are not \
                 capped by volume (--max-volume-participation does not apply)"
            );
        }
        eprintln!(
            "vigil broker: listening on {} (state {state}); SIGINT or SIGTERM stops it",
            server.url()
        );
    })
    .context("vigil broker")?;
    eprintln!("vigil broker: stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_symbol_equals_path() {
        assert_eq!(
            data_arg("GOOG=data/GOOG_1d.csv").expect("ok"),
            ("GOOG".to_string(), PathBuf::from("data/GOOG_1d.csv"))
        );
        assert!(data_arg("GOOG").is_err());
        assert!(data_arg("=x.csv").is_err());
    }
}
