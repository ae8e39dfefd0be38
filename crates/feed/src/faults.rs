//! The faults the feed can be told to inject, and the frames a bar becomes under them.

use std::fmt::{self, Write as _};

use actix_web::web::Bytes;
use bytestring::ByteString;
use rust_decimal::Decimal;
use serde::Serialize;
use vigil_core::Bar;
use vigil_providers::feed_wire::{self, RFC3339_UTC};

/// A changed message format (the data API that changed over a weekend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FormatChange {
    /// `{"type":"bar","sym":…,"open":…,"high":…,"low":…,"close":…,"volume":…,"timestamp":…}`.
    Renamed,
    /// The usual fields, with prices and volume as strings.
    Strings,
}

impl FormatChange {
    pub(crate) fn parse(kind: &str) -> Option<Self> {
        match kind {
            "renamed" => Some(Self::Renamed),
            "strings" => Some(Self::Strings),
            _ => None,
        }
    }
}

/// The next bar of a symbol, moved by a percentage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Spike {
    /// The symbol.
    pub(crate) symbol: String,
    /// The move, in percent (−50: prices halve).
    pub(crate) pct: Decimal,
}

/// The faults in force, as the control endpoints show them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Faults {
    /// No bar is sent; the connections stay open and pings are answered.
    pub(crate) stalled: bool,
    /// Delay before each bar, in milliseconds.
    pub(crate) slow_ms: u64,
    /// Bars go out in a changed format.
    pub(crate) format: Option<FormatChange>,
    /// Bars go out as garbage.
    pub(crate) garbage: bool,
    /// The next bar of a symbol jumps.
    pub(crate) spike: Option<Spike>,
}

/// What goes on the wire for one bar.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    Text(ByteString),
    Binary(Bytes),
}

/// Moves every price of `bar` by `pct` percent. `None` when a price would overflow.
pub(crate) fn spiked(bar: &Bar, pct: Decimal) -> Option<Bar> {
    let factor = Decimal::ONE.checked_add(pct.checked_div(Decimal::ONE_HUNDRED)?)?;
    Some(Bar {
        open: bar.open.checked_mul(factor)?,
        high: bar.high.checked_mul(factor)?,
        low: bar.low.checked_mul(factor)?,
        close: bar.close.checked_mul(factor)?,
        ..*bar
    })
}

/// The frame of `bar` of `symbol` as the stream sends it, or in a changed format, or as
/// garbage (the `seq`-th garbage frame: three kinds in turn).
pub(crate) fn encode(
    symbol: &str,
    bar: &Bar,
    format: Option<FormatChange>,
    garbage: Option<u64>,
) -> Result<Frame, fmt::Error> {
    /// The "renamed" format: the same frame with long field names.
    const RENAMED: feed_wire::FrameKeys = feed_wire::FrameKeys {
        kind: ("type", "bar"),
        fields: ["sym", "open", "high", "low", "close", "volume", "timestamp"],
    };
    let mut text = String::with_capacity(160);
    match format {
        None => feed_wire::write_bar_frame(&mut text, symbol, bar)?,
        // The feed serves only files with a volume column (`FeedServer::start`); a bar
        // without one would go out without its volume field, as `write_bar_frame` does.
        Some(FormatChange::Renamed) => {
            feed_wire::write_bar_frame_keyed(&mut text, &RENAMED, symbol, bar)?;
        }
        Some(FormatChange::Strings) => {
            write!(
                text,
                r#"[{{"T":"b","S":"{symbol}","o":"{}","h":"{}","l":"{}","c":"{}","#,
                bar.open, bar.high, bar.low, bar.close,
            )?;
            if let Some(v) = bar.volume {
                write!(text, r#""v":"{v}","#)?;
            }
            write!(text, r#""t":"{}"}}]"#, bar.ts.format(RFC3339_UTC))?;
        }
    }
    Ok(match garbage.map(|seq| seq % 3) {
        None => Frame::Text(text.into()),
        Some(0) => {
            Frame::Text("\u{1}\u{2}garbage <html><body>502 Bad Gateway</body></html>".into())
        }
        Some(1) => Frame::Binary(Bytes::from_static(b"\x00\xff\xfe\x80garbage\x7f")),
        Some(_) => {
            // The bar's frame cut in the middle: JSON that never ends.
            text.truncate(text.floor_char_boundary(text.len() / 2));
            Frame::Text(text.into())
        }
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::SymbolId;
    use vigil_providers::feed_wire::{WireProblem, parse_frame_to_vec};

    use super::*;

    fn bar() -> Bar {
        Bar {
            symbol: SymbolId(0),
            ts: "2024-01-02T14:30:00Z".parse().expect("ts"),
            open: dec!(100.34),
            high: dec!(104.06),
            low: dec!(95.96),
            close: dec!(100.5),
            volume: Some(dec!(22351900)),
        }
    }

    fn text(frame: Frame) -> String {
        match frame {
            Frame::Text(t) => t.to_string(),
            Frame::Binary(b) => panic!("binary {b:?}"),
        }
    }

    #[test]
    fn every_changed_format_is_rejected_by_the_parser_naming_a_field() {
        let normal = text(encode("GOOG", &bar(), None, None).expect("encode"));
        assert!(parse_frame_to_vec(&normal)[0].is_ok(), "{normal}");
        for (format, field) in [
            (FormatChange::Renamed, "type"),
            (FormatChange::Strings, "o"),
        ] {
            let frame = text(encode("GOOG", &bar(), Some(format), None).expect("encode"));
            let parsed = parse_frame_to_vec(&frame);
            let e = parsed[0].as_ref().expect_err("changed format");
            assert_eq!(e.field(), Some(field), "{frame}: {e}");
        }
        for seq in 0..3 {
            match encode("GOOG", &bar(), None, Some(seq)).expect("encode") {
                Frame::Binary(b) => assert!(std::str::from_utf8(&b).is_err()),
                Frame::Text(t) => {
                    let parsed = parse_frame_to_vec(&t);
                    assert!(
                        matches!(
                            parsed[0].as_ref().map_err(|e| e.problem()),
                            Err(WireProblem::NotJson { .. })
                        ),
                        "{t}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_spike_moves_every_price_and_keeps_the_bar_possible() {
        let up = spiked(&bar(), dec!(50)).expect("spike");
        assert_eq!(
            (up.open, up.high, up.low, up.close, up.volume),
            (
                dec!(150.51),
                dec!(156.09),
                dec!(143.94),
                dec!(150.75),
                Some(dec!(22351900))
            )
        );
        assert!(up.check().is_ok());
        let down = spiked(&bar(), dec!(-90)).expect("spike");
        assert_eq!(down.open, dec!(10.034));
        assert!(down.check().is_ok());
        let huge = Bar {
            high: Decimal::MAX,
            ..bar()
        };
        assert_eq!(spiked(&huge, dec!(100)), None);
    }
}
