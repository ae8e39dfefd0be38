//! The market-data stream's wire format (modelled on Alpaca's market-data stream v2), shared
//! by the client ([`WsFeedProvider`](crate::WsFeedProvider)) and the feed process
//! (`vigil feed`), so that the two cannot drift apart. Pure: no I/O.
//!
//! Every WebSocket text frame from the feed is a JSON array of messages, each an object whose
//! `T` names its type:
//!
//! | `T` | fields |
//! | --- | --- |
//! | `success` | `msg`: `connected` or `authenticated` |
//! | `subscription` | `bars`: the symbols subscribed now (Alpaca's other lists, `trades`, `quotes` …, may be present: arrays of symbols, ignored) |
//! | `error` | `code` (an integer), `msg` |
//! | `b` (a bar) | `S` symbol, `o` `h` `l` `c` prices, `v` volume, `t` RFC 3339 time; Alpaca's `n` (trade count) and `vw` (volume-weighted price) may be present and are checked, not used |
//!
//! [`parse_frame`] is strict: anything else is a [`WireError`] naming what was wrong, where
//! (the field, the message's place in the frame) and carrying the raw text, cut to
//! [`RAW_EXCERPT_MAX`] bytes. Numbers are read exactly into [`Decimal`] from their text
//! (never through `f64`); a number that an exact decimal cannot hold is an error, not a
//! rounding. Every bar passes [`Bar::check`]. [`BarValidator`] adds what one message cannot
//! show: per symbol, a time that goes backwards, or repeats.
//!
//! The client sends [`ClientMessage`]s: `{"action":"auth","key":…,"secret":…}` and
//! `{"action":"subscribe","bars":[…]}`. See `docs/feed.md`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, SecondsFormat};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer as _, Serialize};
use serde_json::value::RawValue;
use vigil_core::{Bar, BarError, FutureGuard, SymbolId, Timestamp};

/// The most bytes of a rejected payload a [`WireError`] keeps (cut on a character boundary).
pub const RAW_EXCERPT_MAX: usize = 256;

/// The longest symbol accepted.
pub const SYMBOL_MAX: usize = 32;

/// The frame the feed sends first on every connection.
pub const CONNECTED: &str = r#"[{"T":"success","msg":"connected"}]"#;
/// The frame that accepts the client's credentials.
pub const AUTHENTICATED: &str = r#"[{"T":"success","msg":"authenticated"}]"#;

/// What kind of JSON value a raw text is, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    /// `{…}`
    Object,
    /// `[…]`
    Array,
    /// `"…"`
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// Nothing, or not JSON.
    Invalid,
}

impl JsonKind {
    /// Tells the kind of the (already validated) JSON value `raw` from its first character.
    pub fn of(raw: &str) -> Self {
        match raw.trim_start().as_bytes().first() {
            Some(b'{') => Self::Object,
            Some(b'[') => Self::Array,
            Some(b'"') => Self::String,
            Some(b'-' | b'0'..=b'9') => Self::Number,
            Some(b't' | b'f') => Self::Bool,
            Some(b'n') => Self::Null,
            _ => Self::Invalid,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Object => "an object",
            Self::Array => "an array",
            Self::String => "a string",
            Self::Number => "a number",
            Self::Bool => "a boolean",
            Self::Null => "null",
            Self::Invalid => "nothing",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a message (or a whole frame).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireProblem {
    /// The frame is not JSON (the reason gives serde_json's line and column).
    #[error("not JSON: {reason}")]
    NotJson {
        /// Why.
        reason: String,
    },
    /// A binary frame: the stream is JSON text only.
    #[error("a binary frame ({len} bytes); the stream sends text frames only")]
    Binary {
        /// Its length.
        len: usize,
    },
    /// The frame is not a JSON array.
    #[error("the frame is {found}, expected an array of messages")]
    NotArray {
        /// What it is.
        found: JsonKind,
    },
    /// The frame is an empty array.
    #[error("the frame is an empty array")]
    EmptyFrame,
    /// A message is not a JSON object.
    #[error("the message is {found}, expected an object")]
    NotObject {
        /// What it is.
        found: JsonKind,
    },
    /// The message type `T` is not one of the stream's.
    #[error("unknown message type T={value:?}")]
    UnknownType {
        /// The type given (cut to a bounded length).
        value: String,
    },
    /// A required field is absent.
    #[error("field {field:?} is missing")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field the message type does not have.
    #[error("unknown field {field:?}")]
    UnknownField {
        /// The field as sent (cut to a bounded length).
        field: String,
    },
    /// A field given twice.
    #[error("field {field:?} is given twice")]
    DuplicateField {
        /// The field.
        field: &'static str,
    },
    /// A field of the wrong JSON type.
    #[error("field {field:?}: expected {expected}, found {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: JsonKind,
        /// What it is.
        found: JsonKind,
    },
    /// A number that cannot be taken exactly.
    #[error("field {field:?}: {reason}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A value of the right type that is not allowed.
    #[error("field {field:?}: {reason}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `t` is not an RFC 3339 time.
    #[error("field \"t\": {value:?} is not an RFC 3339 time: {reason}")]
    BadTimestamp {
        /// The text (cut to a bounded length).
        value: String,
        /// Why.
        reason: String,
    },
    /// The bar's prices or volume are impossible.
    #[error("field {field:?}: impossible bar: {error}")]
    ImpossibleBar {
        /// The wire field at fault (`o`, `h`, `l`, `c`, `v`).
        field: &'static str,
        /// Which impossibility.
        error: BarError,
    },
    /// A bar for a symbol that was not subscribed.
    #[error("field \"S\": a bar for {symbol}, which is not subscribed")]
    UnsubscribedSymbol {
        /// The symbol.
        symbol: String,
    },
    /// A control message where bars were expected (`connected` mid-stream …).
    #[error("unexpected {what} message in the stream")]
    Unexpected {
        /// Which message.
        what: &'static str,
    },
    /// The bar's time is before the symbol's previous bar.
    #[error("field \"t\": {symbol} bar at {ts} is before the previous bar at {previous}")]
    Backwards {
        /// The symbol.
        symbol: String,
        /// The bar's time.
        ts: String,
        /// The previous bar's time.
        previous: String,
    },
    /// The bar's time lies beyond the clock's now and the tolerance.
    #[error("field \"t\": {symbol} bar from the future: {detail}")]
    Future {
        /// The symbol.
        symbol: String,
        /// How far ahead, of which clock.
        detail: String,
    },
    /// A second bar of the symbol with the same time.
    #[error("field \"t\": duplicate {symbol} bar at {ts}")]
    Duplicate {
        /// The symbol.
        symbol: String,
        /// The time.
        ts: String,
    },
}

impl WireProblem {
    /// Returns the wire field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MissingField { field }
            | Self::DuplicateField { field }
            | Self::WrongType { field, .. }
            | Self::BadNumber { field, .. }
            | Self::BadValue { field, .. }
            | Self::ImpossibleBar { field, .. } => Some(field),
            Self::UnknownField { field } => Some(field),
            Self::UnknownType { .. } => Some("T"),
            Self::BadTimestamp { .. }
            | Self::Backwards { .. }
            | Self::Duplicate { .. }
            | Self::Future { .. } => Some("t"),
            Self::UnsubscribedSymbol { .. } => Some("S"),
            Self::NotJson { .. }
            | Self::Binary { .. }
            | Self::NotArray { .. }
            | Self::EmptyFrame
            | Self::NotObject { .. }
            | Self::Unexpected { .. } => None,
        }
    }
}

/// A message (or frame) the stream rejected: what was wrong, where, and the raw text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    // Boxed: the error travels in `Result`s of the hot path, which stay small.
    problem: Box<WireProblem>,
    index: Option<usize>,
    raw: String,
    raw_len: usize,
}

impl std::error::Error for WireError {}

impl WireError {
    /// Makes the error of message `index` of its frame (`None`: the whole frame), keeping
    /// at most [`RAW_EXCERPT_MAX`] bytes of `raw`.
    pub fn new(problem: WireProblem, index: Option<usize>, raw: &str) -> Self {
        Self {
            problem: Box::new(problem),
            index,
            raw: raw[..raw.floor_char_boundary(RAW_EXCERPT_MAX)].to_owned(),
            raw_len: raw.len(),
        }
    }

    /// Makes the error of a binary frame; its raw text is the first bytes in hex.
    pub fn binary(bytes: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut raw = String::with_capacity(RAW_EXCERPT_MAX);
        for &b in bytes.iter().take(RAW_EXCERPT_MAX / 2) {
            raw.push(char::from(HEX[usize::from(b >> 4)]));
            raw.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self {
            problem: Box::new(WireProblem::Binary { len: bytes.len() }),
            index: None,
            raw,
            raw_len: bytes.len() * 2,
        }
    }

    /// Returns what was wrong.
    pub fn problem(&self) -> &WireProblem {
        &self.problem
    }

    /// Returns the wire field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        self.problem.field()
    }

    /// Returns the 0-based place of the message in its frame (`None`: the frame as a whole).
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// Returns the raw payload, cut to at most [`RAW_EXCERPT_MAX`] bytes (a binary frame's
    /// in hex).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Returns the length in bytes of the whole raw payload.
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// Tells whether [`raw`](Self::raw) is cut short.
    pub fn truncated(&self) -> bool {
        self.raw.len() < self.raw_len
    }
}

impl fmt::Display for WireError {
    /// `message 1 of the frame: field "o": expected a number, found a string; raw (97
    /// bytes): {"T":"b",…}`; control characters in the raw text are written `\u{1}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "message {i} of the frame: ")?,
            None => f.write_str("frame: ")?,
        }
        write!(f, "{}; raw ({} bytes", self.problem, self.raw_len)?;
        if self.truncated() {
            write!(f, ", first {} shown", self.raw.len())?;
        }
        f.write_str("): ")?;
        for c in self.raw.chars() {
            if c.is_control() {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                f.write_char(c)?;
            }
        }
        if self.truncated() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A bar as the stream carries it; prices exact, [`Bar::check`] passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireBar<'a> {
    /// `S`.
    pub symbol: Cow<'a, str>,
    /// `t`.
    pub ts: Timestamp,
    /// `o`.
    pub open: Decimal,
    /// `h`.
    pub high: Decimal,
    /// `l`.
    pub low: Decimal,
    /// `c`.
    pub close: Decimal,
    /// `v`.
    pub volume: Decimal,
    /// `n`, Alpaca's trade count, when given.
    pub trade_count: Option<u64>,
    /// `vw`, Alpaca's volume-weighted average price, when given.
    pub vwap: Option<Decimal>,
}

impl WireBar<'_> {
    /// Returns the bar stamped with `symbol`'s id.
    pub fn to_bar(&self, symbol: SymbolId) -> Bar {
        Bar {
            symbol,
            ts: self.ts,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: Some(self.volume),
        }
    }
}

/// A message from the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// `{"T":"success","msg":"connected"}`: the connection is open; authenticate.
    Connected,
    /// `{"T":"success","msg":"authenticated"}`: the credentials were accepted.
    Authenticated,
    /// `{"T":"subscription","bars":[…]}`: the symbols whose bars are subscribed now.
    Subscription {
        /// The symbols.
        bars: Vec<Cow<'a, str>>,
    },
    /// `{"T":"error","code":…,"msg":"…"}`.
    Error {
        /// Alpaca's code (400 invalid syntax, 401 not authenticated, 402 auth failed, …).
        code: u64,
        /// The feed's message.
        msg: String,
    },
    /// `{"T":"b",…}`.
    Bar(WireBar<'a>),
}

impl ServerMessage<'_> {
    /// Names the message's kind, for messages about it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connected => "success \"connected\"",
            Self::Authenticated => "success \"authenticated\"",
            Self::Subscription { .. } => "subscription",
            Self::Error { .. } => "error",
            Self::Bar(_) => "bar",
        }
    }
}

/// One message of a frame as [`parse_frame`] hands it over.
#[derive(Debug)]
pub struct FrameItem<'a> {
    /// Its 0-based place in the frame; `None` for an error about the whole frame.
    pub index: Option<usize>,
    /// Its raw text (the whole frame's for an error about the frame).
    pub raw: &'a str,
    /// The message, or why it was rejected.
    pub message: Result<ServerMessage<'a>, WireError>,
}

/// What [`parse_frame`] saw in a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSummary {
    /// Messages accepted.
    pub accepted: usize,
    /// Messages (or whole frames) rejected.
    pub rejected: usize,
}

/// Parses one WebSocket text frame and hands every message in it, or its rejection, to
/// `each`, in order. A frame that is not a JSON array of messages is one rejection; in a
/// valid array each message stands alone (a bad message does not spoil its neighbours).
/// Every call hands over at least one item, so nothing is ever dropped unseen. Never
/// panics, whatever the input.
pub fn parse_frame<'a>(frame: &'a str, mut each: impl FnMut(FrameItem<'a>)) -> FrameSummary {
    let mut summary = FrameSummary::default();
    let mut whole = |problem: WireProblem| {
        each(FrameItem {
            index: None,
            raw: frame,
            message: Err(WireError::new(problem, None, frame)),
        });
        FrameSummary {
            accepted: 0,
            rejected: 1,
        }
    };
    // First the whole frame's syntax, so that no message of a broken frame is taken.
    if let Err(e) = serde_json::from_str::<IgnoredAny>(frame) {
        return whole(WireProblem::NotJson {
            reason: e.to_string(),
        });
    }
    match JsonKind::of(frame) {
        JsonKind::Array => {}
        found => return whole(WireProblem::NotArray { found }),
    }
    let mut de = serde_json::Deserializer::from_str(frame);
    let mut count = 0usize;
    let seq = de.deserialize_seq(FrameVisitor {
        each: &mut |index: usize, raw: &'a str| {
            let message = parse_message(index, raw);
            match &message {
                Ok(_) => summary.accepted += 1,
                Err(_) => summary.rejected += 1,
            }
            each(FrameItem {
                index: Some(index),
                raw,
                message,
            });
        },
        count: &mut count,
    });
    if let Err(e) = seq {
        // The frame's syntax was checked above, so this is not expected; report it anyway.
        each(FrameItem {
            index: None,
            raw: frame,
            message: Err(WireError::new(
                WireProblem::NotJson {
                    reason: e.to_string(),
                },
                None,
                frame,
            )),
        });
        summary.rejected += 1;
    } else if count == 0 {
        each(FrameItem {
            index: None,
            raw: frame,
            message: Err(WireError::new(WireProblem::EmptyFrame, None, frame)),
        });
        summary.rejected += 1;
    }
    summary
}

/// Parses a whole frame into a vector (tests and tools; the provider uses [`parse_frame`],
/// which allocates nothing per message).
pub fn parse_frame_to_vec(frame: &str) -> Vec<Result<ServerMessage<'_>, WireError>> {
    let mut out = Vec::new();
    parse_frame(frame, |item| out.push(item.message));
    out
}

struct FrameVisitor<'f, 'a> {
    each: &'f mut dyn FnMut(usize, &'a str),
    count: &'f mut usize,
}

impl<'a> Visitor<'a> for FrameVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of messages")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'a RawValue>()? {
            (self.each)(*self.count, raw.get());
            *self.count += 1;
        }
        Ok(())
    }
}

/// The fields any message may carry, found by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Type,
    Symbol,
    Open,
    High,
    Low,
    Close,
    Volume,
    Time,
    TradeCount,
    Vwap,
    Msg,
    Code,
    Bars,
    Trades,
    Quotes,
    UpdatedBars,
    DailyBars,
    Statuses,
    Lulds,
    Corrections,
    CancelErrors,
}

const FIELDS: [(Field, &str); 21] = [
    (Field::Type, "T"),
    (Field::Symbol, "S"),
    (Field::Open, "o"),
    (Field::High, "h"),
    (Field::Low, "l"),
    (Field::Close, "c"),
    (Field::Volume, "v"),
    (Field::Time, "t"),
    (Field::TradeCount, "n"),
    (Field::Vwap, "vw"),
    (Field::Msg, "msg"),
    (Field::Code, "code"),
    (Field::Bars, "bars"),
    (Field::Trades, "trades"),
    (Field::Quotes, "quotes"),
    (Field::UpdatedBars, "updatedBars"),
    (Field::DailyBars, "dailyBars"),
    (Field::Statuses, "statuses"),
    (Field::Lulds, "lulds"),
    (Field::Corrections, "corrections"),
    (Field::CancelErrors, "cancelErrors"),
];

/// Alpaca's subscription lists other than `bars`: allowed, checked, ignored.
const OTHER_LISTS: [Field; 8] = [
    Field::Trades,
    Field::Quotes,
    Field::UpdatedBars,
    Field::DailyBars,
    Field::Statuses,
    Field::Lulds,
    Field::Corrections,
    Field::CancelErrors,
];

impl Field {
    fn name(self) -> &'static str {
        FIELDS[self as usize].1
    }
}

/// A message's fields by name, before their types are checked.
struct Fields<'a> {
    values: [Option<&'a RawValue>; FIELDS.len()],
    /// The first field the stream does not know.
    unknown: Option<String>,
    /// The first field given twice.
    duplicate: Option<Field>,
}

impl<'a> Fields<'a> {
    fn get(&self, field: Field) -> Option<&'a str> {
        self.values[field as usize].map(RawValue::get)
    }

    fn require(&self, field: Field) -> Result<&'a str, WireProblem> {
        self.get(field).ok_or(WireProblem::MissingField {
            field: field.name(),
        })
    }

    /// Fails on any field present that is not in `allowed` (nor `T`).
    fn only(&self, allowed: &[Field]) -> Result<(), WireProblem> {
        for (field, name) in FIELDS {
            if field != Field::Type && self.get(field).is_some() && !allowed.contains(&field) {
                return Err(WireProblem::UnknownField {
                    field: name.to_owned(),
                });
            }
        }
        Ok(())
    }
}

enum Key {
    Known(Field),
    Unknown(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match FIELDS.iter().find(|(_, name)| *name == key) {
            Some(&(field, _)) => Key::Known(field),
            None => Key::Unknown(excerpt(key, 64).to_owned()),
        })
    }
}

struct FieldsVisitor;

impl<'a> Visitor<'a> for FieldsVisitor {
    type Value = Fields<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Fields<'a>, A::Error> {
        let mut fields = Fields {
            values: [None; FIELDS.len()],
            unknown: None,
            duplicate: None,
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'a RawValue = map.next_value()?;
            match key {
                Key::Known(field) => {
                    let slot = &mut fields.values[field as usize];
                    if slot.is_some() {
                        fields.duplicate.get_or_insert(field);
                    }
                    *slot = Some(value);
                }
                Key::Unknown(name) => {
                    fields.unknown.get_or_insert(name);
                }
            }
        }
        Ok(fields)
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn excerpt(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

fn parse_message(index: usize, raw: &str) -> Result<ServerMessage<'_>, WireError> {
    message(raw).map_err(|problem| WireError::new(problem, Some(index), raw))
}

fn message(raw: &str) -> Result<ServerMessage<'_>, WireProblem> {
    match JsonKind::of(raw) {
        JsonKind::Object => {}
        found => return Err(WireProblem::NotObject { found }),
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let fields = de
        .deserialize_map(FieldsVisitor)
        .map_err(|e| WireProblem::NotJson {
            reason: e.to_string(),
        })?;
    if let Some(field) = fields.duplicate {
        return Err(WireProblem::DuplicateField {
            field: field.name(),
        });
    }
    if let Some(field) = fields.unknown {
        return Err(WireProblem::UnknownField { field });
    }
    let kind = string(Field::Type, fields.require(Field::Type)?)?;
    match kind.as_ref() {
        "b" => bar(&fields).map(ServerMessage::Bar),
        "success" => {
            fields.only(&[Field::Msg])?;
            match string(Field::Msg, fields.require(Field::Msg)?)?.as_ref() {
                "connected" => Ok(ServerMessage::Connected),
                "authenticated" => Ok(ServerMessage::Authenticated),
                other => Err(WireProblem::BadValue {
                    field: "msg",
                    reason: format!(
                        "{:?} is not a success message (connected, authenticated)",
                        excerpt(other, 64)
                    ),
                }),
            }
        }
        "error" => {
            fields.only(&[Field::Code, Field::Msg])?;
            let code = integer(Field::Code, fields.require(Field::Code)?)?;
            let msg = string(Field::Msg, fields.require(Field::Msg)?)?.into_owned();
            Ok(ServerMessage::Error { code, msg })
        }
        "subscription" => {
            let mut allowed = [Field::Bars; 9];
            allowed[1..].copy_from_slice(&OTHER_LISTS);
            fields.only(&allowed)?;
            let bars = symbols(Field::Bars, fields.require(Field::Bars)?)?;
            for field in OTHER_LISTS {
                if let Some(raw) = fields.get(field) {
                    symbols(field, raw)?;
                }
            }
            Ok(ServerMessage::Subscription { bars })
        }
        other => Err(WireProblem::UnknownType {
            value: excerpt(other, 64).to_owned(),
        }),
    }
}

fn bar<'a>(fields: &Fields<'a>) -> Result<WireBar<'a>, WireProblem> {
    fields.only(&[
        Field::Symbol,
        Field::Open,
        Field::High,
        Field::Low,
        Field::Close,
        Field::Volume,
        Field::Time,
        Field::TradeCount,
        Field::Vwap,
    ])?;
    let symbol = string(Field::Symbol, fields.require(Field::Symbol)?)?;
    check_symbol(&symbol).map_err(|reason| WireProblem::BadValue {
        field: "S",
        reason: reason.to_owned(),
    })?;
    let price = |field: Field| decimal(field, fields.require(field)?);
    let wire = WireBar {
        open: price(Field::Open)?,
        high: price(Field::High)?,
        low: price(Field::Low)?,
        close: price(Field::Close)?,
        volume: price(Field::Volume)?,
        ts: timestamp(fields.require(Field::Time)?)?,
        trade_count: fields
            .get(Field::TradeCount)
            .map(|raw| integer(Field::TradeCount, raw))
            .transpose()?,
        vwap: fields
            .get(Field::Vwap)
            .map(|raw| decimal(Field::Vwap, raw))
            .transpose()?,
        symbol,
    };
    if let Err(error) = wire.to_bar(SymbolId(0)).check() {
        let field = match &error {
            BarError::HighBelowLow { .. } => "h",
            BarError::OutsideRange { field, .. } | BarError::NonPositivePrice { field, .. } => {
                match *field {
                    "open" => "o",
                    "high" => "h",
                    "low" => "l",
                    _ => "c",
                }
            }
            BarError::NegativeVolume(_) => "v",
        };
        return Err(WireProblem::ImpossibleBar { field, error });
    }
    if let Some(vwap) = wire.vwap
        && vwap <= Decimal::ZERO
    {
        return Err(WireProblem::BadValue {
            field: "vw",
            reason: format!("{vwap} is not a positive price"),
        });
    }
    Ok(wire)
}

/// Checks that `symbol` is one the stream can carry: 1 to [`SYMBOL_MAX`] characters, ASCII
/// letters, digits and `. - / : _ ^`.
///
/// # Errors
/// Says what is wrong with it.
pub fn check_symbol(symbol: &str) -> Result<(), &'static str> {
    if symbol.is_empty() {
        return Err("a symbol cannot be empty");
    }
    if symbol.len() > SYMBOL_MAX {
        return Err("a symbol is at most 32 characters");
    }
    if !symbol
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-/:_^".contains(&b))
    {
        return Err("a symbol holds only ASCII letters, digits and . - / : _ ^");
    }
    Ok(())
}

fn expect_kind(field: Field, raw: &str, expected: JsonKind) -> Result<(), WireProblem> {
    let found = JsonKind::of(raw);
    if found == expected {
        Ok(())
    } else {
        Err(WireProblem::WrongType {
            field: field.name(),
            expected,
            found,
        })
    }
}

/// A JSON string's content; borrowed unless it holds escapes.
fn string(field: Field, raw: &str) -> Result<Cow<'_, str>, WireProblem> {
    expect_kind(field, raw, JsonKind::String)?;
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| WireProblem::BadValue {
                field: field.name(),
                reason: format!("not a JSON string: {e}"),
            }),
    }
}

fn symbols(field: Field, raw: &str) -> Result<Vec<Cow<'_, str>>, WireProblem> {
    expect_kind(field, raw, JsonKind::Array)?;
    let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(|e| WireProblem::BadValue {
        field: field.name(),
        reason: format!("not an array: {e}"),
    })?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let symbol = string(field, item.get())?;
        check_symbol(&symbol).map_err(|reason| WireProblem::BadValue {
            field: field.name(),
            reason: format!("{:?}: {reason}", excerpt(&symbol, 64)),
        })?;
        out.push(symbol);
    }
    Ok(out)
}

fn integer(field: Field, raw: &str) -> Result<u64, WireProblem> {
    expect_kind(field, raw, JsonKind::Number)?;
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireProblem::BadNumber {
            field: field.name(),
            reason: "expected a whole number that is not negative",
        });
    }
    raw.parse().map_err(|_overflow| WireProblem::BadNumber {
        field: field.name(),
        reason: "the number is too large",
    })
}

fn decimal(field: Field, raw: &str) -> Result<Decimal, WireProblem> {
    expect_kind(field, raw, JsonKind::Number)?;
    parse_json_decimal(raw).map_err(|reason| WireProblem::BadNumber {
        field: field.name(),
        reason,
    })
}

/// Reads a JSON number exactly. Scientific notation is turned into an integer mantissa and
/// a scale, so `1.5e2` is 150 and a number with more digits than a decimal holds is an
/// error rather than rounded (rust_decimal's `from_scientific` rounds).
fn parse_json_decimal(raw: &str) -> Result<Decimal, &'static str> {
    const TOO_PRECISE: &str = "the number has more digits than an exact decimal holds";
    const TOO_LARGE: &str = "the number is too large for an exact decimal";
    let (mantissa, exponent) = match raw.find(['e', 'E']) {
        None => {
            return Decimal::from_str_exact(raw).map_err(|e| match e {
                rust_decimal::Error::Underflow => TOO_PRECISE,
                _ => TOO_LARGE,
            });
        }
        Some(at) => (&raw[..at], &raw[at + 1..]),
    };
    let exponent: i64 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .map_err(|_| TOO_LARGE)?;
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("not a number");
    }
    // The value is DIGITS × 10^-scale with DIGITS = int ++ frac.
    let all = || int.bytes().chain(frac.bytes());
    let significant: Vec<u8> = all().skip_while(|&b| b == b'0').collect();
    let mut scale = frac.len() as i64 - exponent.clamp(-1000, 1000);
    if significant.is_empty() {
        return Ok(Decimal::ZERO);
    }
    // Trailing zeros beyond the largest scale carry no value.
    let mut kept = significant.len();
    while scale > 28 && kept > 0 && significant[kept - 1] == b'0' {
        kept -= 1;
        scale -= 1;
    }
    if scale > 28 {
        return Err(TOO_PRECISE);
    }
    let zeros = if scale < 0 { (-scale) as usize } else { 0 };
    if kept + zeros > 29 {
        return Err(TOO_LARGE);
    }
    let mut m: i128 = 0;
    for &b in &significant[..kept] {
        m = m * 10 + i128::from(b - b'0');
    }
    for _ in 0..zeros {
        m *= 10;
    }
    if negative {
        m = -m;
    }
    Decimal::try_from_i128_with_scale(m, scale.max(0) as u32).map_err(|_| TOO_LARGE)
}

fn timestamp(raw: &str) -> Result<Timestamp, WireProblem> {
    let text = string(Field::Time, raw)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.to_utc())
        .map_err(|e| WireProblem::BadTimestamp {
            value: excerpt(&text, 64).to_owned(),
            reason: e.to_string(),
        })
}

/// Rejects, per symbol, a bar whose time is not after the symbol's previous bar: a
/// duplicate (the same time again) or a time that goes backwards, counted apart. An older
/// bar sent again shows as backwards. With a [`FutureGuard`], a bar from the future is
/// rejected too. Bars that pass become each symbol's previous bar; a rejected one never
/// does.
#[derive(Debug, Default, Clone)]
pub struct BarValidator {
    last: Vec<Option<Timestamp>>,
    backwards: u64,
    duplicates: u64,
    future: Option<FutureGuard>,
}

impl BarValidator {
    /// Creates a validator that has seen no bar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also rejects bars that `guard` finds in the future.
    pub fn with_future_guard(mut self, guard: FutureGuard) -> Self {
        self.future = Some(guard);
        self
    }

    /// Checks the bar of `symbol` (named `name` in messages) at `ts`, and remembers `ts`
    /// when it passes.
    ///
    /// # Errors
    /// [`WireProblem::Future`], [`WireProblem::Duplicate`] or [`WireProblem::Backwards`].
    pub fn check(
        &mut self,
        symbol: SymbolId,
        name: &str,
        ts: Timestamp,
    ) -> Result<(), WireProblem> {
        if let Some(guard) = &mut self.future
            && let Err(e) = guard.check(ts)
        {
            return Err(WireProblem::Future {
                symbol: name.to_owned(),
                detail: e.to_string(),
            });
        }
        let i = symbol.index();
        if self.last.len() <= i {
            self.last.resize(i + 1, None);
        }
        let slot = &mut self.last[i];
        match *slot {
            Some(previous) if ts == previous => {
                self.duplicates += 1;
                Err(WireProblem::Duplicate {
                    symbol: name.to_owned(),
                    ts: rfc3339(ts),
                })
            }
            Some(previous) if ts < previous => {
                self.backwards += 1;
                Err(WireProblem::Backwards {
                    symbol: name.to_owned(),
                    ts: rfc3339(ts),
                    previous: rfc3339(previous),
                })
            }
            _ => {
                *slot = Some(ts);
                Ok(())
            }
        }
    }

    /// Returns the time of `symbol`'s last bar that passed.
    pub fn last(&self, symbol: SymbolId) -> Option<Timestamp> {
        self.last.get(symbol.index()).copied().flatten()
    }

    /// Returns how many bars went backwards.
    pub fn backwards(&self) -> u64 {
        self.backwards
    }

    /// Returns how many bars repeated their symbol's previous time.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

fn rfc3339(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Appends the frame of one bar, `[{"T":"b","S":…,"o":…,…,"t":"…"}]`, to `out`: prices and
/// volume as JSON numbers with their exact digits, the time in RFC 3339 UTC. `symbol` must
/// pass [`check_symbol`] (it is written without escaping). A bar whose volume is unknown is
/// written without `v`, which [`parse_frame`] refuses: the stream carries every bar's volume
/// (the feed process refuses a CSV file without a volume column).
///
/// # Errors
/// Only when a value's formatting fails, which writing to a `String` does not.
pub fn write_bar_frame(out: &mut String, symbol: &str, bar: &Bar) -> fmt::Result {
    write_bar_frame_keyed(out, &FrameKeys::ALPACA, symbol, bar)
}

/// The names a bar frame gives its fields: Alpaca's ([`FrameKeys::ALPACA`]), or others (the
/// feed's "renamed format" fault writes the same frame under other names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameKeys {
    /// The key of the message type, and its value for a bar.
    pub kind: (&'static str, &'static str),
    /// Symbol, open, high, low, close, volume and time.
    pub fields: [&'static str; 7],
}

impl FrameKeys {
    /// Alpaca's market-data stream v2: `{"T":"b","S":…,"o":…,"h":…,"l":…,"c":…,"v":…,"t":…}`.
    pub const ALPACA: Self = Self {
        kind: ("T", "b"),
        fields: ["S", "o", "h", "l", "c", "v", "t"],
    };
}

/// [`write_bar_frame`] under the field names `keys`.
///
/// # Errors
/// Only when a value's formatting fails, which writing to a `String` does not.
pub fn write_bar_frame_keyed(
    out: &mut String,
    keys: &FrameKeys,
    symbol: &str,
    bar: &Bar,
) -> fmt::Result {
    let (kind, bar_kind) = keys.kind;
    let [s, o, h, l, c, v, t] = keys.fields;
    write!(
        out,
        r#"[{{"{kind}":"{bar_kind}","{s}":"{symbol}","{o}":{},"{h}":{},"{l}":{},"{c}":{},"#,
        bar.open, bar.high, bar.low, bar.close,
    )?;
    if let Some(volume) = bar.volume {
        write!(out, r#""{v}":{volume},"#)?;
    }
    write!(out, r#""{t}":"{}"}}]"#, bar.ts.format(RFC3339_UTC))
}

/// The times the stream writes: RFC 3339 in UTC, fractions of a second only when there are
/// some (`2024-01-02T14:30:00Z`, `2021-02-22T15:51:44.208Z`).
pub const RFC3339_UTC: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// Returns the frame confirming a subscription to `symbols` (each must pass
/// [`check_symbol`]).
pub fn subscription_frame<'s>(symbols: impl IntoIterator<Item = &'s str>) -> String {
    let mut out = String::from(r#"[{"T":"subscription","trades":[],"quotes":[],"bars":["#);
    for (i, s) in symbols.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
    out.push_str("]}]");
    out
}

/// Returns an error frame, `[{"T":"error","code":…,"msg":"…"}]`.
pub fn error_frame(code: u64, msg: &str) -> String {
    serde_json::json!([{"T": "error", "code": code, "msg": msg}]).to_string()
}

/// A message from the client to the feed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// `{"action":"auth","key":"…","secret":"…"}`.
    Auth {
        /// The API key id.
        key: String,
        /// The API secret.
        secret: String,
    },
    /// `{"action":"subscribe","bars":["GOOG"]}` (Alpaca's `trades` and `quotes` lists
    /// may be given; the feed serves bars only).
    Subscribe {
        /// The symbols whose bars to send.
        bars: Vec<String>,
        /// Alpaca's trades list; the feed sends no trades.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        trades: Vec<String>,
        /// Alpaca's quotes list; the feed sends no quotes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        quotes: Vec<String>,
    },
}

impl fmt::Debug for ClientMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth { key, .. } => f
                .debug_struct("Auth")
                .field("key", key)
                .field("secret", &"[REDACTED]")
                .finish(),
            Self::Subscribe {
                bars,
                trades,
                quotes,
            } => f
                .debug_struct("Subscribe")
                .field("bars", bars)
                .field("trades", trades)
                .field("quotes", quotes)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    const GOOD: &str = r#"{"T":"b","S":"GOOG","o":100.34,"h":104.06,"l":95.96,"c":100.5,"v":22351900,"t":"2024-01-02T14:30:00Z"}"#;

    fn one(frame: &str) -> Result<ServerMessage<'_>, WireError> {
        let mut all = parse_frame_to_vec(frame);
        assert_eq!(all.len(), 1, "{frame}: {all:?}");
        all.remove(0)
    }

    fn problem(frame: &str) -> WireProblem {
        match one(frame) {
            Ok(m) => panic!("{frame}: accepted as {m:?}"),
            Err(e) => e.problem().clone(),
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn parses_a_bar_exactly() {
        let frame = format!("[{GOOD}]");
        let Ok(ServerMessage::Bar(bar)) = one(&frame) else {
            panic!("not a bar");
        };
        assert_eq!(bar.symbol, "GOOG");
        assert!(matches!(bar.symbol, Cow::Borrowed(_)));
        assert_eq!(bar.ts, t("2024-01-02T14:30:00Z"));
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close, bar.volume),
            (
                dec!(100.34),
                dec!(104.06),
                dec!(95.96),
                dec!(100.5),
                dec!(22351900)
            )
        );
        // The digits as sent: nothing went through a float.
        assert_eq!(bar.open.to_string(), "100.34");
        assert_eq!((bar.trade_count, bar.vwap), (None, None));
    }

    #[test]
    fn parses_control_messages_and_alpaca_extras() {
        let frame = r#"[{"T":"success","msg":"connected"},{"T":"success","msg":"authenticated"},
            {"T":"subscription","trades":[],"quotes":["AAPL"],"bars":["GOOG","BRK.B"],"dailyBars":[]},
            {"T":"error","code":402,"msg":"auth failed"}]"#;
        let all: Vec<_> = parse_frame_to_vec(frame)
            .into_iter()
            .map(|m| m.expect("valid"))
            .collect();
        assert_eq!(
            all,
            vec![
                ServerMessage::Connected,
                ServerMessage::Authenticated,
                ServerMessage::Subscription {
                    bars: vec!["GOOG".into(), "BRK.B".into()]
                },
                ServerMessage::Error {
                    code: 402,
                    msg: "auth failed".into()
                },
            ]
        );
        let alpaca = r#"[{"T":"b","S":"AAPL","o":1.5,"h":2,"l":1,"c":1.75,"v":10,"t":"2021-02-22T15:51:44.208Z","n":3,"vw":1.6}]"#;
        let Ok(ServerMessage::Bar(bar)) = one(alpaca) else {
            panic!("not a bar");
        };
        assert_eq!((bar.trade_count, bar.vwap), (Some(3), Some(dec!(1.6))));
        assert_eq!(bar.ts, t("2021-02-22T15:51:44.208Z"));
    }

    #[test]
    fn written_frames_parse_back_to_the_same_bar() {
        let bar = Bar {
            symbol: SymbolId(4),
            ts: t("2004-08-19T00:00:00Z"),
            open: dec!(100.00),
            high: dec!(104.06),
            low: dec!(95.96),
            close: dec!(100.34),
            volume: Some(dec!(22351900)),
        };
        let mut frame = String::new();
        write_bar_frame(&mut frame, "GOOG", &bar).expect("write");
        let Ok(ServerMessage::Bar(wire)) = one(&frame) else {
            panic!("not a bar: {frame}");
        };
        assert_eq!(wire.to_bar(SymbolId(4)), bar);
        assert_eq!(wire.open.to_string(), "100.00");
        let sub = subscription_frame(["GOOG", "X"]);
        assert_eq!(
            one(&sub).expect("subscription"),
            ServerMessage::Subscription {
                bars: vec!["GOOG".into(), "X".into()]
            }
        );
        assert_eq!(
            one(&error_frame(401, "not \"authenticated\"")).expect("error"),
            ServerMessage::Error {
                code: 401,
                msg: "not \"authenticated\"".into()
            }
        );
    }

    #[test]
    fn rejects_frames_that_are_not_arrays_of_messages() {
        assert!(matches!(problem("garbage"), WireProblem::NotJson { .. }));
        assert!(matches!(problem(""), WireProblem::NotJson { .. }));
        assert!(matches!(problem("[1,"), WireProblem::NotJson { .. }));
        assert!(matches!(
            problem(&format!("[{GOOD}] x")),
            WireProblem::NotJson { .. }
        ));
        assert_eq!(
            problem(GOOD),
            WireProblem::NotArray {
                found: JsonKind::Object
            }
        );
        assert_eq!(problem("[]"), WireProblem::EmptyFrame);
        assert_eq!(
            problem("[7]"),
            WireProblem::NotObject {
                found: JsonKind::Number
            }
        );
        // NaN and infinities are not JSON.
        assert!(matches!(
            problem(&GOOD.replace("100.34", "NaN")),
            WireProblem::NotJson { .. }
        ));
    }

    #[test]
    fn rejects_a_changed_format_naming_the_field() {
        let renamed = r#"[{"type":"bar","sym":"GOOG","open":1,"high":1,"low":1,"close":1,"volume":1,"timestamp":"2024-01-02T14:30:00Z"}]"#;
        assert_eq!(
            problem(renamed),
            WireProblem::UnknownField {
                field: "type".into()
            }
        );
        let strings = format!("[{}]", GOOD.replace("100.34", "\"100.34\""));
        assert_eq!(
            problem(&strings),
            WireProblem::WrongType {
                field: "o",
                expected: JsonKind::Number,
                found: JsonKind::String
            }
        );
        let missing = format!("[{}]", GOOD.replace(r#","v":22351900"#, ""));
        assert_eq!(problem(&missing), WireProblem::MissingField { field: "v" });
        let extra = format!("[{}]", GOOD.replace(r#""T":"b","#, r#""T":"b","x":1,"#));
        let e = one(&extra).expect_err("extra");
        assert_eq!(e.field(), Some("x"));
        let twice = format!("[{}]", GOOD.replace(r#""T":"b","#, r#""T":"b","o":1,"#));
        assert_eq!(problem(&twice), WireProblem::DuplicateField { field: "o" });
        let no_type = format!("[{}]", GOOD.replace(r#""T":"b","#, ""));
        assert_eq!(problem(&no_type), WireProblem::MissingField { field: "T" });
        assert_eq!(
            problem(r#"[{"T":"t","S":"GOOG"}]"#),
            WireProblem::UnknownType { value: "t".into() }
        );
        assert_eq!(
            problem(r#"[{"T":7}]"#),
            WireProblem::WrongType {
                field: "T",
                expected: JsonKind::String,
                found: JsonKind::Number
            }
        );
        // A field of another message type.
        assert_eq!(
            problem(r#"[{"T":"success","msg":"connected","code":1}]"#),
            WireProblem::UnknownField {
                field: "code".into()
            }
        );
        assert!(matches!(
            problem(r#"[{"T":"success","msg":"welcome"}]"#),
            WireProblem::BadValue { field: "msg", .. }
        ));
        assert!(matches!(
            problem(r#"[{"T":"error","code":-1,"msg":"x"}]"#),
            WireProblem::BadNumber { field: "code", .. }
        ));
    }

    #[test]
    fn rejects_impossible_prices_and_bad_times() {
        let with = |from: &str, to: &str| format!("[{}]", GOOD.replace(from, to));
        let cases: [(&str, &str, &str); 9] = [
            (r#""o":100.34"#, r#""o":-100.34"#, "o"),
            (r#""l":95.96"#, r#""l":0"#, "l"),
            (r#""h":104.06"#, r#""h":90"#, "h"),
            (r#""o":100.34"#, r#""o":110"#, "o"),
            (r#""c":100.5"#, r#""c":95"#, "c"),
            (r#""v":22351900"#, r#""v":-1"#, "v"),
            (r#""o":100.34"#, r#""o":1e400"#, "o"),
            (
                r#""o":100.34"#,
                r#""o":100.000000000000000000000000000001"#,
                "o",
            ),
            (
                r#""v":22351900"#,
                r#""v":123456789012345678901234567890"#,
                "v",
            ),
        ];
        for (from, to, field) in cases {
            let e = one(&with(from, to)).expect_err(to);
            assert_eq!(e.field(), Some(field), "{to}: {e}");
        }
        for bad in ["2024-01-02", "2024-13-02T14:30:00Z", "yesterday", ""] {
            let e = one(&with("2024-01-02T14:30:00Z", bad)).expect_err(bad);
            assert!(
                matches!(e.problem(), WireProblem::BadTimestamp { .. }),
                "{bad}: {e}"
            );
        }
        let e = one(&with(r#""t":"2024-01-02T14:30:00Z""#, r#""t":1704205800"#)).expect_err("t");
        assert_eq!(e.field(), Some("t"));
        for bad in ["", "GO OG", "ÄPL", "A\"B"] {
            let frame = with(
                r#""S":"GOOG""#,
                &format!(r#""S":{}"#, serde_json::json!(bad)),
            );
            let e = one(&frame).expect_err(bad);
            assert_eq!(e.field(), Some("S"), "{bad}: {e}");
        }
    }

    #[test]
    fn reads_scientific_notation_exactly_or_not_at_all() {
        for (raw, value) in [
            ("1.5e2", dec!(150)),
            ("1.5E+2", dec!(150)),
            ("25e-3", dec!(0.025)),
            ("0e5", dec!(0)),
            ("1.2300e1", dec!(12.300)),
            ("79228162514264337593543950335", Decimal::MAX),
        ] {
            assert_eq!(parse_json_decimal(raw), Ok(value), "{raw}");
        }
        for raw in [
            "1.23456789012345678901234567891e0",
            "1e-29",
            "1e29",
            "79228162514264337593543950336",
            "1e99999999999999999999",
        ] {
            assert!(parse_json_decimal(raw).is_err(), "{raw}");
        }
        // Trailing zeros beyond the largest scale are not precision.
        assert_eq!(
            parse_json_decimal("1.23456789012345678901234567890e0"),
            Ok(dec!(1.2345678901234567890123456789))
        );
        assert_eq!(
            parse_json_decimal("1.000000000000000000000000000000e0"),
            Ok(dec!(1.0000000000000000000000000000))
        );
    }

    #[test]
    fn a_bad_message_does_not_spoil_its_neighbours() {
        let frame = format!(r#"[{GOOD},{{"T":"b"}},{GOOD}]"#);
        let mut items = Vec::new();
        let summary = parse_frame(&frame, |item| {
            items.push((item.index, item.message.is_ok()))
        });
        assert_eq!(
            summary,
            FrameSummary {
                accepted: 2,
                rejected: 1
            }
        );
        assert_eq!(
            items,
            vec![(Some(0), true), (Some(1), false), (Some(2), true)]
        );
    }

    #[test]
    fn errors_keep_a_bounded_excerpt_on_a_char_boundary() {
        let long = format!(r#"[{{"T":"{}"}}]"#, "é".repeat(400));
        let e = one(&long).expect_err("unknown type");
        assert!(e.truncated());
        assert!(e.raw().len() <= RAW_EXCERPT_MAX);
        // The message's raw text: the frame without its brackets.
        assert_eq!(e.raw_len(), long.len() - 2);
        assert!(long[1..].starts_with(e.raw()));
        let text = e.to_string();
        assert!(
            text.starts_with("message 0 of the frame: unknown message type T="),
            "{text}"
        );
        assert!(
            text.contains(&format!("raw ({} bytes, first 256 shown)", long.len() - 2)),
            "{text}"
        );
        let e = one("\u{1}garbage").expect_err("garbage");
        assert!(e.to_string().ends_with(": \\u{1}garbage"), "{e}");
        let b = WireError::binary(&[0xde, 0xad, 0xff]);
        assert_eq!((b.raw(), b.field()), ("deadff", None));
        assert!(
            b.to_string().starts_with("frame: a binary frame (3 bytes)"),
            "{b}"
        );
    }

    #[test]
    fn validator_rejects_backwards_and_duplicate_times_per_symbol() {
        let mut v = BarValidator::new();
        let (goog, msft) = (SymbolId(0), SymbolId(3));
        assert_eq!(v.check(goog, "GOOG", t("2024-01-02T00:00:00Z")), Ok(()));
        assert_eq!(v.check(msft, "MSFT", t("2024-01-01T00:00:00Z")), Ok(()));
        assert_eq!(
            v.check(goog, "GOOG", t("2024-01-02T00:00:00Z")),
            Err(WireProblem::Duplicate {
                symbol: "GOOG".into(),
                ts: "2024-01-02T00:00:00Z".into()
            })
        );
        let back = v
            .check(goog, "GOOG", t("2024-01-01T00:00:00Z"))
            .expect_err("backwards");
        assert_eq!(
            back.to_string(),
            "field \"t\": GOOG bar at 2024-01-01T00:00:00Z is before the previous bar at \
             2024-01-02T00:00:00Z"
        );
        // A rejected bar does not move the symbol's clock; other symbols are apart.
        assert_eq!(v.last(goog), Some(t("2024-01-02T00:00:00Z")));
        assert_eq!(v.check(goog, "GOOG", t("2024-01-03T00:00:00Z")), Ok(()));
        assert_eq!(v.check(msft, "MSFT", t("2024-01-02T00:00:00Z")), Ok(()));
        assert_eq!((v.backwards(), v.duplicates()), (1, 1));
        assert_eq!(v.last(SymbolId(9)), None);
    }

    /// The feed's own check: a bar stamped 2099 is a malformed message, and it does not
    /// become the symbol's previous bar (every true bar after it would look old).
    #[test]
    fn validator_with_a_future_guard_rejects_a_bar_from_the_future_and_forgets_it() {
        let clock = vigil_core::SimClock::starting_at(t("2026-12-04T15:00:00Z"));
        let mut v = BarValidator::new().with_future_guard(FutureGuard::new(
            std::sync::Arc::new(clock),
            chrono::Duration::seconds(60),
        ));
        let goog = SymbolId(0);
        assert_eq!(v.check(goog, "GOOG", t("2026-12-04T14:58:00Z")), Ok(()));
        let future = v
            .check(goog, "GOOG", t("2099-01-01T00:00:00Z"))
            .expect_err("from the future");
        assert_eq!(
            future.to_string(),
            "field \"t\": GOOG bar from the future: timestamp 2099-01-01T00:00:00Z is 26325 \
             days ahead of the clock (2026-12-04T15:00:00Z; tolerance 60s)"
        );
        assert_eq!(future.field(), Some("t"));
        assert_eq!(v.last(goog), Some(t("2026-12-04T14:58:00Z")));
        assert_eq!(v.check(goog, "GOOG", t("2026-12-04T14:59:00Z")), Ok(()));
    }

    #[test]
    fn client_messages_are_alpacas() {
        let auth = ClientMessage::Auth {
            key: "k".into(),
            secret: "s".into(),
        };
        assert_eq!(
            serde_json::to_string(&auth).expect("json"),
            r#"{"action":"auth","key":"k","secret":"s"}"#
        );
        assert!(!format!("{auth:?}").contains("\"s\""));
        let sub: ClientMessage =
            serde_json::from_str(r#"{"action":"subscribe","trades":[],"bars":["GOOG"]}"#)
                .expect("subscribe");
        assert_eq!(
            serde_json::to_string(&sub).expect("json"),
            r#"{"action":"subscribe","bars":["GOOG"]}"#
        );
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"action":"subscribe","bars":[],"x":1}"#)
                .is_err()
        );
    }

    /// A valid bar message's fields, to mutate.
    fn good_fields() -> Vec<(String, String)> {
        [
            ("T", r#""b""#),
            ("S", r#""GOOG""#),
            ("o", "100.34"),
            ("h", "104.06"),
            ("l", "95.96"),
            ("c", "100.5"),
            ("v", "22351900"),
            ("t", r#""2024-01-02T14:30:00Z""#),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn object(fields: &[(String, String)]) -> String {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    /// Values that are the wrong type, out of range, or odd.
    fn odd_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just(r#""""#.to_owned()),
            Just(r#""100.34""#.to_owned()),
            Just("-0".to_owned()),
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("1e400".to_owned()),
            Just("-1e-400".to_owned()),
            Just("123456789012345678901234567890".to_owned()),
            Just("0.0000000000000000000000000000001".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just(r#""2024-02-30T00:00:00Z""#.to_owned()),
            Just(r#""\u0047OOG""#.to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            (any::<i64>(), 0u32..40).prop_map(|(m, e)| format!("{m}e-{e}")),
            "[a-zA-Z0-9 .:-]{0,12}".prop_map(|s| format!("{s:?}")),
        ]
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete(usize),
        Replace(usize, String),
        Rename(usize, String),
        Add(String, String),
        Truncate(usize),
        Duplicate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (0usize..8).prop_map(Mutation::Delete),
            (0usize..8, odd_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
            (0usize..8, "[a-zA-Z]{1,4}").prop_map(|(i, k)| Mutation::Rename(i, k)),
            ("[a-zA-Z]{1,4}", odd_value()).prop_map(|(k, v)| Mutation::Add(k, v)),
            (0usize..200).prop_map(Mutation::Truncate),
            (0usize..8).prop_map(Mutation::Duplicate),
        ]
    }

    fn mutated(mutations: &[Mutation]) -> String {
        let mut fields = good_fields();
        let mut cut = None;
        for m in mutations {
            let n = fields.len();
            match m {
                Mutation::Delete(i) if n > 0 => {
                    fields.remove(i % n);
                }
                Mutation::Replace(i, v) if n > 0 => fields[i % n].1 = v.clone(),
                Mutation::Rename(i, k) if n > 0 => fields[i % n].0 = k.clone(),
                Mutation::Add(k, v) => fields.push((k.clone(), v.clone())),
                Mutation::Duplicate(i) if n > 0 => fields.push(fields[i % n].clone()),
                Mutation::Truncate(at) => cut = Some(*at),
                _ => {}
            }
        }
        let mut frame = format!("[{}]", object(&fields));
        if let Some(at) = cut {
            frame.truncate(frame.floor_char_boundary(at));
        }
        frame
    }

    /// Runs the parser and checks what must hold for every input: at least one item, the
    /// summary counts every item, every error has a bounded excerpt of the input, and
    /// whatever is accepted is a possible bar.
    fn check_frame(frame: &str) -> Result<FrameSummary, TestCaseError> {
        let mut items = 0;
        let mut errors = 0;
        let mut bad = None;
        let summary = parse_frame(frame, |item| {
            items += 1;
            match &item.message {
                Err(e) => {
                    errors += 1;
                    if e.raw().len() > RAW_EXCERPT_MAX || !item.raw.starts_with(e.raw()) {
                        bad = Some(format!("excerpt {:?} of {:?}", e.raw(), item.raw));
                    }
                    // Display never panics and names the problem.
                    if !e.to_string().contains(&e.problem().to_string()) {
                        bad = Some(format!("display of {e:?}"));
                    }
                }
                Ok(ServerMessage::Bar(b)) => {
                    if let Err(e) = b.to_bar(SymbolId(0)).check() {
                        bad = Some(format!("accepted an impossible bar: {e}"));
                    }
                }
                Ok(_) => {}
            }
        });
        prop_assert!(bad.is_none(), "{:?}", bad);
        prop_assert!(items >= 1, "nothing handed over for {:?}", frame);
        prop_assert_eq!(summary.accepted + summary.rejected, items);
        prop_assert_eq!(summary.rejected, errors);
        Ok(summary)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic_and_every_failure_is_counted(
            bytes in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let text = String::from_utf8_lossy(&bytes);
            check_frame(&text)?;
        }

        #[test]
        fn random_json_like_text_never_panics(text in r#"[\[\]{}",:0-9a-zA-Z.eE+\- ]{0,120}"#) {
            check_frame(&text)?;
        }

        #[test]
        fn mutated_bars_are_rejected_or_sound(
            mutations in proptest::collection::vec(mutation(), 1..4)
        ) {
            let frame = mutated(&mutations);
            let summary = check_frame(&frame)?;
            if mutations.iter().all(|m| matches!(m, Mutation::Delete(_))) {
                // Every field of the good bar is required: deleting any must be rejected.
                prop_assert_eq!(summary.accepted, 0, "{}", frame);
            }
        }
    }
}
