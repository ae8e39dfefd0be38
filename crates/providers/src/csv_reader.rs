//! OHLCV bars from CSV files: a strict synchronous reader, and a [`DataProvider`] that
//! replays one file per symbol, merged in time order, from a dedicated thread.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use vigil_core::{Bar, MarketDataEvent, Symbol, SymbolId, Timestamp, escape_controls};

use crate::traits::{DataProvider, ProviderError, ProviderHealth};

/// Bars each source reads ahead in the replay thread.
const READ_CHUNK: usize = 1024;
/// Batches the replay thread may have in flight before it blocks.
const CHANNEL_CAPACITY: usize = 4;
/// Spare batch buffers kept for reuse: the in-flight batches plus the one being filled and
/// the one being consumed.
const SPARE_CAPACITY: usize = CHANNEL_CAPACITY + 2;
/// The csv reader's buffer: large enough that refills are rare next to parsing.
const CSV_BUFFER: usize = 64 * 1024;

/// Where the bars of one symbol come from: a file, or bytes compiled into the binary.
#[derive(Clone)]
pub struct CsvSource {
    symbol: SymbolId,
    name: String,
    data: SourceData,
}

#[derive(Clone)]
enum SourceData {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

impl CsvSource {
    /// Creates a source reading `symbol`'s bars from the file at `path`; errors name the
    /// path as given.
    pub fn file(symbol: SymbolId, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            symbol,
            name: path.display().to_string(),
            data: SourceData::File(path),
        }
    }

    /// Creates a source reading `symbol`'s bars from `bytes` (data compiled into the
    /// binary); errors name it `display_name`.
    pub fn bytes(
        symbol: SymbolId,
        display_name: impl Into<String>,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Self {
        Self {
            symbol,
            name: display_name.into(),
            data: SourceData::Bytes(bytes.into()),
        }
    }

    /// Returns the symbol whose bars the source holds.
    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// Returns the name errors use: the path as given, or the display name.
    pub fn display_name(&self) -> &str {
        &self.name
    }

    fn open_stream(&self) -> Result<Box<dyn Read + Send>, CsvError> {
        let stream: Box<dyn Read + Send> = match &self.data {
            SourceData::File(path) => {
                // Checked before opening: opening a FIFO would block, and a device such as
                // /dev/zero never ends.
                let meta = std::fs::metadata(path)
                    .map_err(|e| CsvError::whole(&self.name, format!("cannot read: {e}")))?;
                if !meta.is_file() {
                    return Err(CsvError::whole(
                        &self.name,
                        "not a regular file (a folder, device or pipe): bar data must be a file",
                    ));
                }
                let file = File::open(path)
                    .map_err(|e| CsvError::whole(&self.name, format!("cannot read: {e}")))?;
                Box::new(Checked::new(file, &self.name))
            }
            SourceData::Bytes(bytes) => Box::new(Checked::new(
                std::io::Cursor::new(Arc::clone(bytes)),
                &self.name,
            )),
        };
        Ok(stream)
    }
}

/// The longest line a CSV source may have, in bytes without its line end. A row of bars is
/// a few dozen bytes; anything near this is not bar data, and reading it whole would only
/// grow memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A source's bytes on their way to the csv parser, checked as they pass, so that the
/// parser never sees what would make it misread or grow without bound: a NUL byte (binary
/// data, or a file allocated and never written), a line longer than [`MAX_LINE_BYTES`], or
/// an end without a line end (a file cut short while it was written: its last value may be
/// a prefix of the real one). The bytes before the problem are passed on first, so the rows
/// before it are read; the next read is the error, carried as an `io::Error` holding the
/// [`CsvError`] (see [`read_error`]).
struct Checked<R> {
    inner: R,
    name: String,
    /// The line of the next byte (1-based).
    line: u64,
    /// Bytes of the current line so far.
    line_len: usize,
    /// Whether the current line holds a carriage return (for the message at a bad end).
    line_cr: bool,
    /// The last byte passed on, if any.
    last: Option<u8>,
    /// The problem found, returned by the next read.
    problem: Option<CsvError>,
}

impl<R: Read> Checked<R> {
    fn new(inner: R, name: &str) -> Self {
        Self {
            inner,
            name: name.to_owned(),
            line: 1,
            line_len: 0,
            line_cr: false,
            last: None,
            problem: None,
        }
    }

    fn fail(&mut self, detail: impl fmt::Display) -> CsvError {
        CsvError::at(&self.name, self.line, detail)
    }

    /// Scans `buf` (just read) and returns how many of its bytes may be passed on; a
    /// problem found is kept for the next read. Vectorised searches (`memchr`): the reader
    /// parses millions of rows a second, and a byte-by-byte loop here would halve that.
    fn scan(&mut self, buf: &[u8]) -> usize {
        let mut start = 0;
        // Line ends and NUL bytes in one pass.
        for at in memchr::memchr2_iter(b'\n', 0, buf) {
            if self.line_len + (at - start) > MAX_LINE_BYTES {
                return self.too_long(start);
            }
            if buf[at] == 0 {
                self.line_len += at - start;
                self.problem = Some(self.fail(
                    "a NUL byte: binary data, not CSV text (a file allocated but never written?)",
                ));
                return at;
            }
            self.line += 1;
            self.line_len = 0;
            self.line_cr = false;
            start = at + 1;
        }
        let tail = &buf[start..];
        if self.line_len + tail.len() > MAX_LINE_BYTES {
            return self.too_long(start);
        }
        self.line_len += tail.len();
        self.line_cr |= memchr::memchr(b'\r', tail).is_some();
        buf.len()
    }

    /// The current line, which began before `at` in the buffer just read, is too long: the
    /// bytes before it are passed on.
    fn too_long(&mut self, at: usize) -> usize {
        self.problem = Some(self.fail(format_args!(
            "line longer than {MAX_LINE_BYTES} bytes: not CSV bar data"
        )));
        at
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(problem) = &self.problem {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                problem.clone(),
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.last.is_some_and(|b| b != b'\n') {
            let detail = if self.line_cr {
                "the last line has no line end (\\n), only carriage returns: line endings \
                 must be \\n or \\r\\n"
            } else {
                "the last line has no line end (cut short?): a file being written, or \
                 truncated, may end in part of a value"
            };
            let problem = self.fail(detail);
            self.problem = Some(problem.clone());
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                problem,
            ));
        }
        let passed = self.scan(&buf[..n]);
        if passed > 0 {
            self.last = Some(buf[passed - 1]);
        } else if let Some(problem) = &self.problem {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                problem.clone(),
            ));
        }
        Ok(passed)
    }
}

impl fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CsvSource");
        d.field("symbol", &self.symbol).field("name", &self.name);
        match &self.data {
            SourceData::File(path) => d.field("path", path),
            SourceData::Bytes(bytes) => d.field("bytes", &bytes.len()),
        };
        d.finish()
    }
}

/// A CSV file that cannot be read as bars. The message names the source and, for a problem
/// in a row, its 1-based physical line (the header is line 1): `GOOG.csv:7: column 'close':
/// cannot parse "abc" as a decimal`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CsvError {
    source_name: String,
    line: Option<u64>,
    message: String,
}

impl CsvError {
    fn at(name: &str, line: u64, detail: impl fmt::Display) -> Self {
        Self {
            source_name: name.to_owned(),
            line: Some(line),
            message: format!("{name}:{line}: {detail}"),
        }
    }

    fn whole(name: &str, detail: impl fmt::Display) -> Self {
        Self {
            source_name: name.to_owned(),
            line: None,
            message: format!("{name}: {detail}"),
        }
    }

    /// Returns the name of the source the error is in (the path as given, or the display
    /// name).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Returns the 1-based physical line the error is on, when it is about one line.
    pub fn line(&self) -> Option<u64> {
        self.line
    }
}

fn read_error(name: &str, e: &csv::Error) -> CsvError {
    match e.kind() {
        csv::ErrorKind::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<CsvError>()) {
            // What `Checked` refused, with its line.
            Some(found) => found.clone(),
            None => CsvError::whole(name, format_args!("cannot read: {io}")),
        },
        _ => CsvError::whole(name, format_args!("cannot read: {e}")),
    }
}

/// The csv records of a source, with exact physical line numbers and blank-line policy.
struct Records {
    reader: csv::Reader<Box<dyn Read + Send>>,
    record: csv::ByteRecord,
    /// The line the next record would start on were no blank line skipped.
    next_line: u64,
    /// The first blank line seen since the last record; an error if a record follows.
    blank: Option<u64>,
}

impl Records {
    fn new(stream: Box<dyn Read + Send>) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Rows of the wrong width get vigil's own message, not csv's.
            .flexible(true)
            // Only '\n' ends a record, so the parser consumes every terminator as part of
            // its record and its line count stays exact; a '\r' of CRLF is trimmed from the
            // last field like any other surrounding whitespace.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(CSV_BUFFER)
            .from_reader(stream);
        Self {
            reader,
            record: csv::ByteRecord::new(),
            next_line: 1,
            blank: None,
        }
    }

    /// Reads the next non-blank record into `self.record` and returns its line, or `None`
    /// at the end of the source.
    fn next(&mut self, name: &str) -> Result<Option<u64>, CsvError> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| read_error(name, &e))?;
            if !more {
                // Blank lines after the last record are harmless.
                return Ok(None);
            }
            let start = self.next_line;
            let end = self.reader.position().line();
            self.next_line = end;
            // Every record ends in a '\n' the parser counts, so a record normally spans one
            // line. More means quoted newlines inside it or empty lines the parser skipped
            // silently before it; only the latter move the record's first line.
            let line = if end == start + 1 {
                start
            } else {
                let inner = self
                    .record
                    .as_slice()
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                let skipped = (end - start).saturating_sub(1 + inner as u64);
                if skipped > 0 {
                    self.blank.get_or_insert(start);
                }
                start + skipped
            };
            if self.record.len() == 1 && self.record[0].trim_ascii().is_empty() {
                // Whitespace only (or the '\r' of an empty CRLF line).
                self.blank.get_or_insert(line);
                continue;
            }
            if let Some(blank) = self.blank {
                return Err(CsvError::at(
                    name,
                    blank,
                    "blank line inside the data (only trailing blank lines are allowed)",
                ));
            }
            return Ok(Some(line));
        }
    }
}

/// Where each field is, found from the header.
struct Columns {
    ts: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: Option<usize>,
    count: usize,
    /// The header's names as written (trimmed), for messages.
    names: Vec<String>,
}

const TS: usize = 0;
const OPEN: usize = 1;
const HIGH: usize = 2;
const LOW: usize = 3;
const CLOSE: usize = 4;
const VOLUME: usize = 5;
/// Canonical names, indexed by the constants above.
const CANONICAL: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

fn role_of(name: &[u8]) -> Option<usize> {
    const ALIASES: [(&str, usize); 8] = [
        ("timestamp", TS),
        ("time", TS),
        ("date", TS),
        ("datetime", TS),
        ("open", OPEN),
        ("high", HIGH),
        ("low", LOW),
        ("close", CLOSE),
    ];
    if name.eq_ignore_ascii_case(b"volume") || name.eq_ignore_ascii_case(b"vol") {
        return Some(VOLUME);
    }
    ALIASES
        .iter()
        .find(|(alias, _)| name.eq_ignore_ascii_case(alias.as_bytes()))
        .map(|&(_, role)| role)
}

fn resolve_header(name: &str, line: u64, header: &csv::ByteRecord) -> Result<Columns, CsvError> {
    let mut names = Vec::with_capacity(header.len());
    let mut found: [Option<usize>; 6] = [None; 6];
    for (i, field) in header.iter().enumerate() {
        let mut field = field.trim_ascii();
        if i == 0 {
            // csv strips a UTF-8 byte order mark only when it arrives in one read; make sure.
            field = field.strip_prefix(b"\xef\xbb\xbf").unwrap_or(field);
        }
        if field.contains(&b'\r') {
            // A file with bare-'\r' line endings reads as one long header row: refuse it
            // rather than replay an empty file.
            return Err(CsvError::at(
                name,
                line,
                "header contains a carriage return inside a field \
                 (line endings must be \\n or \\r\\n)",
            ));
        }
        // For messages: a control character in the file is shown escaped, never raw.
        names.push(escape_controls(&String::from_utf8_lossy(field)).into_owned());
        let Some(role) = role_of(field) else { continue };
        if let Some(first) = found[role] {
            return Err(CsvError::at(
                name,
                line,
                format_args!(
                    "columns '{}' and '{}' both name the {} column",
                    names[first], names[i], CANONICAL[role]
                ),
            ));
        }
        found[role] = Some(i);
    }
    let mut required = [0usize; 5];
    for role in [TS, OPEN, HIGH, LOW, CLOSE] {
        match found[role] {
            Some(i) => required[role] = i,
            None => {
                return Err(CsvError::at(
                    name,
                    line,
                    format_args!(
                        "missing column '{}' (header has: {})",
                        CANONICAL[role],
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Columns {
        ts: required[TS],
        open: required[OPEN],
        high: required[HIGH],
        low: required[LOW],
        close: required[CLOSE],
        volume: found[VOLUME],
        count: header.len(),
        names,
    })
}

/// Reads the bars of one [`CsvSource`], strictly: columns are found by header name, and a
/// row that cannot be read is an error naming its line and column, never skipped.
///
/// Rows must be in ascending time order without duplicates, and every bar must pass
/// [`Bar::check`]. Blank lines are allowed only at the end. After an error the reader
/// returns the same error on every later call.
pub struct CsvBarReader {
    name: String,
    symbol: SymbolId,
    records: Records,
    columns: Columns,
    prev_ts: Option<Timestamp>,
    failed: Option<CsvError>,
}

impl fmt::Debug for CsvBarReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvBarReader")
            .field("name", &self.name)
            .field("symbol", &self.symbol)
            .field("next_line", &self.records.next_line)
            .field("failed", &self.failed.is_some())
            .finish_non_exhaustive()
    }
}

impl CsvBarReader {
    /// Opens `source` and reads and resolves its header.
    ///
    /// # Errors
    /// Fails when the source cannot be read, is empty, or its header lacks a required
    /// column (timestamp, open, high, low, close) or names one twice.
    pub fn open(source: &CsvSource) -> Result<Self, CsvError> {
        let name = source.name.clone();
        let mut records = Records::new(source.open_stream()?);
        let Some(line) = records.next(&name)? else {
            return Err(CsvError::whole(&name, "empty file, expected a header row"));
        };
        let columns = resolve_header(&name, line, &records.record)?;
        Ok(Self {
            name,
            symbol: source.symbol,
            records,
            columns,
            prev_ts: None,
            failed: None,
        })
    }

    /// Returns the name errors use for this source.
    pub fn source_name(&self) -> &str {
        &self.name
    }

    /// Returns the symbol the bars are stamped with.
    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// Whether the header has a volume column; without one every bar's volume is `None`
    /// (unknown).
    pub fn has_volume(&self) -> bool {
        self.columns.volume.is_some()
    }

    /// Appends up to `max` bars to `out` and returns how many; 0 means the end of the
    /// source. When a bad row follows good ones, this call returns the good ones and the
    /// next call the error.
    ///
    /// # Errors
    /// Fails on an unreadable source or a malformed, impossible or out-of-order row.
    pub fn read_batch(&mut self, max: usize, out: &mut Vec<Bar>) -> Result<usize, CsvError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut n = 0;
        while n < max {
            match self.next_bar() {
                Ok(Some(bar)) => {
                    out.push(bar);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    self.failed = Some(e.clone());
                    if n == 0 {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(n)
    }

    fn next_bar(&mut self) -> Result<Option<Bar>, CsvError> {
        let Some(line) = self.records.next(&self.name)? else {
            return Ok(None);
        };
        let record = &self.records.record;
        let c = &self.columns;
        if record.len() != c.count {
            return Err(CsvError::at(
                &self.name,
                line,
                format_args!("expected {} fields, found {}", c.count, record.len()),
            ));
        }
        let raw_ts = record[c.ts].trim_ascii();
        let Some(ts) = parse_timestamp(raw_ts) else {
            return Err(CsvError::at(
                &self.name,
                line,
                format_args!(
                    "column '{}': cannot parse \"{}\" as a timestamp \
                     (expected RFC 3339, ISO 8601 or YYYY-MM-DD)",
                    c.names[c.ts],
                    escape_controls(&String::from_utf8_lossy(raw_ts))
                ),
            ));
        };
        let decimal = |col: usize| -> Result<Decimal, CsvError> {
            let raw = record[col].trim_ascii();
            // The message shape is fixed; the quoted raw text shows what is wrong with it.
            parse_decimal(raw).map_err(|_reason| {
                CsvError::at(
                    &self.name,
                    line,
                    format_args!(
                        "column '{}': cannot parse \"{}\" as a decimal",
                        c.names[col],
                        escape_controls(&String::from_utf8_lossy(raw))
                    ),
                )
            })
        };
        let bar = Bar {
            symbol: self.symbol,
            ts,
            open: decimal(c.open)?,
            high: decimal(c.high)?,
            low: decimal(c.low)?,
            close: decimal(c.close)?,
            // No volume column: the volume is unknown, which is not zero.
            volume: c.volume.map(decimal).transpose()?,
        };
        if let Err(e) = bar.check() {
            return Err(CsvError::at(
                &self.name,
                line,
                format_args!("impossible bar: {e}"),
            ));
        }
        if let Some(prev) = self.prev_ts
            && ts <= prev
        {
            return Err(CsvError::at(
                &self.name,
                line,
                format_args!(
                    "timestamp {} is not after the previous row's {} \
                     (rows must be in ascending time order without duplicates)",
                    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    prev.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ),
            ));
        }
        self.prev_ts = Some(ts);
        Ok(Some(bar))
    }
}

/// Parses a price or volume exactly (more digits than a `Decimal` holds is an error, not a
/// rounding). The error is rust_decimal's reason, which the caller replaces by the fixed
/// message quoting the raw text.
fn parse_decimal(raw: &[u8]) -> Result<Decimal, rust_decimal::Error> {
    if let Some(d) = parse_decimal_fast(raw) {
        return Ok(d);
    }
    let s = std::str::from_utf8(raw).map_err(|e| rust_decimal::Error::from(e.to_string()))?;
    match Decimal::from_str_exact(s) {
        // Scientific notation (`1e3`, `2.5E-4`) is what some exporters write.
        Err(_) if s.bytes().any(|b| b == b'e' || b == b'E') => Decimal::from_scientific(s),
        parsed => parsed,
    }
}

/// Parses plain decimals (`-12.345`, at most 19 digits) in one pass, without
/// rust_decimal's general parser, which then only sees the rare rest. `None` for anything
/// else.
fn parse_decimal_fast(raw: &[u8]) -> Option<Decimal> {
    let (negative, body) = match raw {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, raw),
    };
    // 19 digits always fit a u64 mantissa; a dot makes 20 bytes.
    if body.is_empty() || body.len() > 20 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut dot = None;
    for (i, &b) in body.iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit < 10 {
            mantissa = mantissa * 10 + u64::from(digit);
        } else if b == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return None;
        }
    }
    let scale = match dot {
        None if body.len() <= 19 => 0,
        // `.5` and `5.` are left to the general parser.
        Some(i) if i > 0 && i + 1 < body.len() => body.len() - 1 - i,
        _ => return None,
    };
    // Splitting the u64 mantissa into rust_decimal's 32-bit words.
    Some(Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        negative,
        scale as u32,
    ))
}

/// Parses a timestamp: RFC 3339 / ISO 8601 with a zone, ISO 8601 without one (taken as
/// UTC), or a plain date (midnight UTC). `None` when it is none of those. (The backtest's
/// column reader parses with it too.)
pub fn parse_timestamp(raw: &[u8]) -> Option<Timestamp> {
    if let Some(ts) = parse_timestamp_fast(raw) {
        return Some(ts);
    }
    // The common shapes are handled above; everything else goes through chrono. Each
    // attempt's error only means "not this shape"; the caller reports the raw text.
    let Ok(s) = std::str::from_utf8(raw) else {
        return None;
    };
    if let Ok(t) = s.parse::<DateTime<FixedOffset>>() {
        return Some(t.to_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    None
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DD HH:MM:SS` (`T` or space,
/// optional `Z`) without chrono's general parser. `None` for anything else, including
/// invalid dates, which chrono then rejects with the same verdict.
fn parse_timestamp_fast(b: &[u8]) -> Option<Timestamp> {
    let (time, zone_ok) = match b.len() {
        10 => (false, true),
        19 => (true, true),
        20 => (true, b[19] == b'Z' || b[19] == b'z'),
        _ => return None,
    };
    if !zone_ok || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i64::from(digits(b, 0, 4)?);
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if time {
        if !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, m, s) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
        // A leap second (60) is left to chrono.
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        secs += i64::from(h * 3600 + m * 60 + s);
    }
    DateTime::from_timestamp(secs, 0)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    b.get(at..at + n)?.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What the replay thread sends.
enum Message {
    Batch(Vec<MarketDataEvent>),
    Failed(CsvError),
    End,
}

/// Why the merge stopped early.
enum Stop {
    /// The provider was dropped: a normal shutdown.
    Disconnected,
    Failed(CsvError),
}

/// One source in the merge, reading ahead in chunks.
struct Cursor {
    reader: CsvBarReader,
    buf: Vec<Bar>,
    pos: usize,
}

impl Cursor {
    /// Returns the merge key of the next bar, reading a chunk when the buffer is spent.
    fn peek(&mut self) -> Result<Option<(Timestamp, SymbolId)>, CsvError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.reader.read_batch(READ_CHUNK, &mut self.buf)?;
        }
        Ok(self.buf.get(self.pos).map(|b| (b.ts, b.symbol)))
    }

    fn take(&mut self) -> Option<Bar> {
        let bar = self.buf.get(self.pos).copied();
        self.pos += 1;
        bar
    }
}

/// The replay thread's body: merges the sources and reports how it ended.
fn replay(
    readers: Vec<CsvBarReader>,
    batch_size: usize,
    tx: &mpsc::Sender<Message>,
    spares: &mut mpsc::Receiver<Vec<MarketDataEvent>>,
) {
    let mut cursors: Vec<Cursor> = readers
        .into_iter()
        .map(|reader| Cursor {
            reader,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
        })
        .collect();
    let last = match merge(&mut cursors, batch_size, tx, spares) {
        Ok(()) => Message::End,
        Err(Stop::Failed(e)) => Message::Failed(e),
        Err(Stop::Disconnected) => return,
    };
    match tx.blocking_send(last) {
        Ok(()) => {}
        // The provider was dropped before the end: a normal shutdown, nobody to tell.
        Err(_closed) => {}
    }
}

/// Takes a recycled batch buffer, or makes one while none has come back yet.
fn spare_batch(
    spares: &mut mpsc::Receiver<Vec<MarketDataEvent>>,
    batch_size: usize,
) -> Vec<MarketDataEvent> {
    match spares.try_recv() {
        Ok(mut batch) => {
            batch.clear();
            batch
        }
        // Empty or closed both just mean "no spare to reuse".
        Err(_none) => Vec::with_capacity(batch_size),
    }
}

fn send_batch(tx: &mpsc::Sender<Message>, batch: Vec<MarketDataEvent>) -> Result<(), Stop> {
    tx.blocking_send(Message::Batch(batch))
        .map_err(|_closed| Stop::Disconnected)
}

/// Merges the sources in (timestamp, symbol) order into batches of `batch_size`. On a
/// source error, sends the bars merged before it, then returns the error.
fn merge(
    cursors: &mut [Cursor],
    batch_size: usize,
    tx: &mpsc::Sender<Message>,
    spares: &mut mpsc::Receiver<Vec<MarketDataEvent>>,
) -> Result<(), Stop> {
    let mut batch = spare_batch(spares, batch_size);
    let mut heap = BinaryHeap::with_capacity(cursors.len());
    for (i, cursor) in cursors.iter_mut().enumerate() {
        match cursor.peek() {
            Ok(Some((ts, symbol))) => heap.push(Reverse((ts, symbol, i))),
            Ok(None) => {}
            Err(e) => return Err(Stop::Failed(e)),
        }
    }
    let mut next = heap.pop();
    while let Some(Reverse((_, _, i))) = next {
        let bar = cursors[i]
            .take()
            .expect("a source is in the merge only while it has a peeked bar");
        batch.push(MarketDataEvent::Bar(bar));
        if batch.len() >= batch_size {
            send_batch(tx, batch)?;
            batch = spare_batch(spares, batch_size);
        }
        next = match cursors[i].peek() {
            Ok(Some((ts, symbol))) => {
                let key = Reverse((ts, symbol, i));
                // Stay on this source while it is still the earliest (always, with one
                // source): one comparison instead of a heap push and pop per bar.
                match heap.peek_mut() {
                    Some(mut top) if *top > key => Some(std::mem::replace(&mut *top, key)),
                    _ => Some(key),
                }
            }
            Ok(None) => heap.pop(),
            Err(e) => {
                if !batch.is_empty() {
                    send_batch(tx, batch)?;
                }
                return Err(Stop::Failed(e));
            }
        };
    }
    if !batch.is_empty() {
        send_batch(tx, batch)?;
    }
    Ok(())
}

/// The replay thread's ends of the channels.
struct Stream {
    batches: mpsc::Receiver<Message>,
    spares: mpsc::Sender<Vec<MarketDataEvent>>,
}

/// Why the stream is over, kept so that every later call says so again.
enum Failure {
    Malformed(String),
    Stopped(String),
}

/// A [`DataProvider`] replaying CSV files, one per symbol, merged in time order (ties by
/// symbol id).
///
/// `connect` opens every source and checks its header, then starts one thread
/// (`vigil-csv`) that parses and merges the files ahead of the consumer through a small
/// bounded channel, recycling batch buffers so that steady state allocates nothing per
/// batch. A malformed row ends the stream: the bars before it are delivered first, then
/// `next_batch` fails with [`ProviderError::Malformed`] carrying the [`CsvError`] message.
/// Every source is replayed; `subscribe` only checks that the asked-for symbols are served.
pub struct CsvReplayProvider {
    name: String,
    sources: Vec<CsvSource>,
    batch_size: usize,
    stream: Option<Stream>,
    current: Vec<MarketDataEvent>,
    pos: usize,
    ended: bool,
    failure: Option<Failure>,
    health: ProviderHealth,
}

impl fmt::Debug for CsvReplayProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvReplayProvider")
            .field("name", &self.name)
            .field("sources", &self.sources)
            .field("batch_size", &self.batch_size)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl CsvReplayProvider {
    /// Creates a provider replaying `sources` (one per symbol) in batches of `batch_size`
    /// events (a size of 0 is taken as 1). Nothing is opened until `connect`.
    pub fn new(sources: Vec<CsvSource>, batch_size: usize) -> Self {
        let names: Vec<&str> = sources.iter().map(CsvSource::display_name).collect();
        Self {
            name: format!("csv:{}", names.join(",")),
            sources,
            batch_size: batch_size.max(1),
            stream: None,
            current: Vec::new(),
            pos: 0,
            ended: false,
            failure: None,
            health: ProviderHealth::default(),
        }
    }

    fn connect_error(&self, reason: impl fmt::Display) -> ProviderError {
        ProviderError::Connect {
            provider: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn failure_error(&self, failure: &Failure) -> ProviderError {
        match failure {
            Failure::Malformed(message) => ProviderError::Malformed(message.clone()),
            Failure::Stopped(reason) => ProviderError::Stream {
                provider: self.name.clone(),
                reason: reason.clone(),
            },
        }
    }

    /// Moves up to `max` events of the current batch into `out`.
    fn take(&mut self, max: usize, out: &mut Vec<MarketDataEvent>) {
        let n = max.min(self.current.len() - self.pos);
        let taken = &self.current[self.pos..self.pos + n];
        if let Some(MarketDataEvent::Bar(bar)) = taken.last() {
            self.health.last_event_at = Some(bar.ts);
        }
        out.extend_from_slice(taken);
        self.pos += n;
        self.health.events += n as u64;
    }
}

#[async_trait]
impl DataProvider for CsvReplayProvider {
    fn name(&self) -> &str {
        &self.name
    }

    /// Stats every file source (bundled bytes always answer): a replay's "connection" is
    /// its files being there.
    async fn ping(&mut self) -> Result<(), ProviderError> {
        for source in &self.sources {
            if let SourceData::File(path) = &source.data {
                std::fs::metadata(path)
                    .map_err(|e| self.connect_error(format_args!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<(), ProviderError> {
        if self.stream.is_some() {
            return Err(self.connect_error("already connected (a replay runs once)"));
        }
        let mut seen: Vec<Option<&str>> = Vec::new();
        for source in &self.sources {
            let i = source.symbol.index();
            if i >= seen.len() {
                seen.resize(i + 1, None);
            }
            if let Some(other) = seen[i] {
                return Err(self.connect_error(format_args!(
                    "symbol {} has two sources: {other} and {}",
                    source.symbol.0, source.name
                )));
            }
            seen[i] = Some(&source.name);
        }
        let mut readers = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            readers.push(CsvBarReader::open(source).map_err(|e| self.connect_error(e))?);
        }
        let (tx, batches) = mpsc::channel(CHANNEL_CAPACITY);
        let (spares, mut spare_rx) = mpsc::channel(SPARE_CAPACITY);
        let batch_size = self.batch_size;
        thread::Builder::new()
            .name("vigil-csv".into())
            .spawn(move || replay(readers, batch_size, &tx, &mut spare_rx))
            .map_err(|e| self.connect_error(format_args!("cannot start the reader thread: {e}")))?;
        self.stream = Some(Stream { batches, spares });
        self.health.connected = true;
        Ok(())
    }

    async fn subscribe(&mut self, symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError> {
        for (id, symbol) in symbols {
            if !self.sources.iter().any(|s| s.symbol == *id) {
                return Err(ProviderError::UnknownSymbol {
                    provider: self.name.clone(),
                    symbol: symbol.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError> {
        if self.pos < self.current.len() {
            self.take(max, out);
            return Ok(true);
        }
        if let Some(failure) = &self.failure {
            return Err(self.failure_error(failure));
        }
        if self.ended {
            return Ok(false);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ProviderError::Stream {
                provider: self.name.clone(),
                reason: "not connected".into(),
            });
        };
        if max == 0 {
            return Ok(true);
        }
        match stream.batches.recv().await {
            Some(Message::Batch(batch)) => {
                let mut spent = std::mem::replace(&mut self.current, batch);
                self.pos = 0;
                if spent.capacity() > 0 {
                    spent.clear();
                    match stream.spares.try_send(spent) {
                        Ok(()) => {}
                        // Enough spares already, or the thread has finished: the buffer is
                        // simply freed.
                        Err(_full_or_closed) => {}
                    }
                }
                self.take(max, out);
                Ok(true)
            }
            Some(Message::Failed(e)) => {
                self.health.errors += 1;
                self.health.connected = false;
                let failure = Failure::Malformed(e.to_string());
                let err = self.failure_error(&failure);
                self.failure = Some(failure);
                Err(err)
            }
            Some(Message::End) => {
                self.ended = true;
                self.health.connected = false;
                Ok(false)
            }
            None => {
                // The thread always sends End or Failed last; a closed channel without
                // either means it panicked.
                self.health.connected = false;
                let failure =
                    Failure::Stopped("the csv reader thread stopped before the end".into());
                let err = self.failure_error(&failure);
                self.failure = Some(failure);
                Err(err)
            }
        }
    }

    fn validates_bars(&self) -> bool {
        // Every row goes through `Bar::check` in `CsvBarReader::next_bar`.
        true
    }

    fn health(&self) -> ProviderHealth {
        self.health.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;
    use std::io::Write;

    const HEADER: &str = "timestamp,open,high,low,close,volume\n";

    fn t(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn source(text: &str) -> CsvSource {
        CsvSource::bytes(SymbolId(0), "t.csv", text.as_bytes())
    }

    fn read_all(text: &str) -> Result<Vec<Bar>, CsvError> {
        let mut reader = CsvBarReader::open(&source(text))?;
        let mut out = Vec::new();
        while reader.read_batch(3, &mut out)? > 0 {}
        Ok(out)
    }

    fn error_of(text: &str) -> CsvError {
        match read_all(text) {
            Ok(bars) => panic!("expected an error, read {} bars", bars.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn finds_columns_in_any_order_case_and_alias_ignoring_extras() {
        let bars = read_all(
            " Close ,VOL,Extra, Date ,HIGH,low,Open\n\
             10.5,1200,x,2024-01-15,11,9.5,10\n",
        )
        .expect("read");
        assert_eq!(
            bars,
            vec![Bar {
                symbol: SymbolId(0),
                ts: t("2024-01-15T00:00:00Z"),
                open: dec!(10),
                high: dec!(11),
                low: dec!(9.5),
                close: dec!(10.5),
                volume: Some(dec!(1200)),
            }]
        );
        for ts_alias in ["time", "DateTime", "TIMESTAMP"] {
            let text = format!("{ts_alias},open,high,low,close,volume\n2024-01-15,1,1,1,1,0\n");
            assert_eq!(read_all(&text).expect("alias").len(), 1, "{ts_alias}");
        }
    }

    #[test]
    fn volume_column_is_optional_and_its_absence_is_unknown_not_zero() {
        let text = "timestamp,open,high,low,close\n2024-01-15,1,2,1,2\n";
        let reader = CsvBarReader::open(&source(text)).expect("open");
        assert!(!reader.has_volume());
        let bars = read_all(text).expect("read");
        assert_eq!(bars[0].volume, None);
        let bars = read_all(&format!("{HEADER}2024-01-15,1,2,1,2,0\n")).expect("read");
        assert_eq!(
            bars[0].volume,
            Some(Decimal::ZERO),
            "a real zero stays zero"
        );
        assert!(
            CsvBarReader::open(&source(HEADER))
                .expect("open")
                .has_volume()
        );
    }

    #[test]
    fn missing_column_is_named_with_the_header() {
        let e = error_of("timestamp,open,high,low,vol\n");
        assert_eq!(
            e.to_string(),
            "t.csv:1: missing column 'close' (header has: timestamp, open, high, low, vol)"
        );
        assert_eq!(e.line(), Some(1));
        assert_eq!(e.source_name(), "t.csv");
    }

    #[test]
    fn duplicate_aliases_are_named_both() {
        let e = error_of("date,time,open,high,low,close\n");
        assert_eq!(
            e.to_string(),
            "t.csv:1: columns 'date' and 'time' both name the timestamp column"
        );
        let e = error_of("timestamp,open,high,low,close,Volume,vol\n");
        assert_eq!(
            e.to_string(),
            "t.csv:1: columns 'Volume' and 'vol' both name the volume column"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        for text in ["", "\n", "\n\n  \n"] {
            let e = error_of(text);
            assert_eq!(e.to_string(), "t.csv: empty file, expected a header row");
            assert_eq!(e.line(), None);
        }
    }

    #[test]
    fn header_only_file_has_no_bars() {
        assert!(read_all(HEADER).expect("read").is_empty());
    }

    #[test]
    fn bad_decimal_names_line_and_column() {
        let e = error_of(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,abc,10\n"
        ));
        assert_eq!(
            e.to_string(),
            "t.csv:3: column 'close': cannot parse \"abc\" as a decimal"
        );
        assert_eq!(e.line(), Some(3));
        // An empty cell is not zero.
        let e = error_of(&format!("{HEADER}2024-01-01,1,2,1,2,\n"));
        assert_eq!(
            e.to_string(),
            "t.csv:2: column 'volume': cannot parse \"\" as a decimal"
        );
    }

    /// The raw text quoted in a message reaches terminals (`vigil run`'s standard error, the
    /// log read by `vigil logs`): a control character in the file is shown escaped.
    #[test]
    fn control_characters_quoted_from_the_file_are_escaped() {
        let e = error_of(&format!("{HEADER}2024-01-01,1,2,1,2\u{1b}[2J\r,10\n"));
        assert_eq!(
            e.to_string(),
            "t.csv:2: column 'close': cannot parse \"2\\x1b[2J\" as a decimal"
        );
        let e = error_of("timestamp,open,high,low,cl\u{1b}]0;x\u{7}ose\n");
        assert!(e.to_string().contains("cl\\x1b]0;x\\x07ose"), "{e}");
        assert!(!e.to_string().chars().any(vigil_core::is_control), "{e}");
    }

    #[test]
    fn column_names_in_errors_are_as_written_in_the_header() {
        let e = error_of("Date,Open,High,Low,Close\nyesterday,1,1,1,1\n");
        assert_eq!(
            e.to_string(),
            "t.csv:2: column 'Date': cannot parse \"yesterday\" as a timestamp \
             (expected RFC 3339, ISO 8601 or YYYY-MM-DD)"
        );
    }

    #[test]
    fn bad_timestamp_names_line_and_column() {
        let e = error_of(&format!("{HEADER}x,1,2,1,2,10\n"));
        assert_eq!(
            e.to_string(),
            "t.csv:2: column 'timestamp': cannot parse \"x\" as a timestamp \
             (expected RFC 3339, ISO 8601 or YYYY-MM-DD)"
        );
        // Well-shaped but impossible dates are not silently normalised.
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T24:00:00Z",
            "2024-01-01T9:30",
        ] {
            let e = error_of(&format!("{HEADER}{bad},1,2,1,2,10\n"));
            assert!(e.to_string().contains("as a timestamp"), "{bad}: {e}");
        }
    }

    #[test]
    fn wrong_field_count_is_an_error() {
        let e = error_of(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,2\n"
        ));
        assert_eq!(e.to_string(), "t.csv:3: expected 6 fields, found 5");
        let e = error_of(&format!("{HEADER}2024-01-01,1,2,1,2,10,7\n"));
        assert_eq!(e.to_string(), "t.csv:2: expected 6 fields, found 7");
    }

    #[test]
    fn out_of_order_and_duplicate_timestamps_are_errors() {
        let e = error_of(&format!(
            "{HEADER}2024-01-02,1,2,1,2,10\n2024-01-01T00:00:00Z,1,2,1,2,10\n"
        ));
        assert_eq!(
            e.to_string(),
            "t.csv:3: timestamp 2024-01-01T00:00:00Z is not after the previous row's \
             2024-01-02T00:00:00Z (rows must be in ascending time order without duplicates)"
        );
        let e = error_of(&format!(
            "{HEADER}2024-01-02,1,2,1,2,10\n2024-01-02,1,2,1,2,10\n"
        ));
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("is not after the previous row's"));
    }

    #[test]
    fn impossible_bars_are_errors() {
        let cases = [
            ("1,1,2,1.5,10", "high 1 is below low 2"),
            ("3,2,1,1.5,10", "open 3 lies outside the bar's range [1, 2]"),
            ("1,2,0,1.5,10", "low 0 is not a positive price"),
            ("1,2,1,1.5,-1", "volume -1 is negative"),
        ];
        for (row, why) in cases {
            let e = error_of(&format!("{HEADER}2024-01-01,{row}\n"));
            assert_eq!(e.to_string(), format!("t.csv:2: impossible bar: {why}"));
        }
    }

    #[test]
    fn missing_file_is_a_read_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.csv");
        let e = CsvBarReader::open(&CsvSource::file(SymbolId(0), &path)).expect_err("missing");
        let shown = path.display().to_string();
        assert!(
            e.to_string()
                .starts_with(&format!("{shown}: cannot read: ")),
            "{e}"
        );
        assert_eq!(e.source_name(), shown);
    }

    #[test]
    fn trailing_blank_lines_are_fine_and_crlf_is_read() {
        let row = "2024-01-01,1,2,1,2,10";
        for text in [
            format!("{HEADER}{row}\n"),
            format!("{HEADER}{row}\n\n"),
            format!("{HEADER}{row}\n  \n\n"),
            format!("timestamp,open,high,low,close,volume\r\n{row}\r\n\r\n"),
        ] {
            assert_eq!(read_all(&text).expect("read").len(), 1, "{text:?}");
        }
    }

    #[test]
    fn blank_line_inside_the_data_is_an_error_with_its_line() {
        let e = error_of(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\n\n2024-01-02,1,2,1,2,10\n"
        ));
        assert_eq!(
            e.to_string(),
            "t.csv:3: blank line inside the data (only trailing blank lines are allowed)"
        );
        let e = error_of(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\r\n\r\n2024-01-02,1,2,1,2,10\r\n"
        ));
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn bare_carriage_return_line_endings_are_refused() {
        let e = error_of("timestamp,open,high,low,close,volume\r2024-01-01,1,2,1,2,10\r");
        assert_eq!(
            e.to_string(),
            "t.csv:1: the last line has no line end (\\n), only carriage returns: \
             line endings must be \\n or \\r\\n"
        );
        let e = error_of("timestamp,open,high,low,close,volume\r2024-01-01,1,2,1,2,10\r\n");
        assert_eq!(
            e.to_string(),
            "t.csv:1: header contains a carriage return inside a field \
             (line endings must be \\n or \\r\\n)"
        );
    }

    /// A file being written, or truncated, can end in part of a value (`101.5` cut to
    /// `10`): a last line without its line end is refused, never read as it is.
    #[test]
    fn a_last_line_without_a_line_end_is_refused_as_cut_short() {
        for (text, line) in [
            (
                format!("{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,2,1"),
                3,
            ),
            (
                format!("{HEADER}2024-01-01,1,2,1,2,10\r\n2024-01-02,1,2"),
                3,
            ),
            ("timestamp,open,high,low,close".to_string(), 1),
            (format!("{HEADER}2024-01-01,1,2,1,2,10\n\n  "), 4),
        ] {
            let e = error_of(&text);
            assert_eq!(
                e.to_string(),
                format!(
                    "t.csv:{line}: the last line has no line end (cut short?): a file being \
                     written, or truncated, may end in part of a value"
                ),
                "{text:?}"
            );
            assert_eq!(e.line(), Some(line));
        }
        // The rows before it are read first, as with any bad row.
        let mut reader = CsvBarReader::open(&source(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,2,1"
        )))
        .expect("open");
        let mut bars = Vec::new();
        assert_eq!(reader.read_batch(10, &mut bars).expect("first row"), 1);
        assert!(reader.read_batch(10, &mut bars).is_err());
    }

    #[test]
    fn nul_bytes_and_endless_lines_are_refused_at_once_with_their_line() {
        let e = error_of(&format!(
            "{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1\0,2,1,2,10\n"
        ));
        assert_eq!(
            e.to_string(),
            "t.csv:3: a NUL byte: binary data, not CSV text (a file allocated but never written?)"
        );
        let e = error_of(&"\0".repeat(1 << 20));
        assert_eq!(e.line(), Some(1), "{e}");
        // A line just under the bound is read (and refused for what it holds); one over is
        // refused for its length, without reading it whole.
        let long = format!(
            "{HEADER}2024-01-01,1,2,1,2,10{}\n",
            " ".repeat(MAX_LINE_BYTES - 30)
        );
        assert!(read_all(&long).is_ok(), "trailing spaces are trimmed");
        let e = error_of(&format!("{HEADER}{}", "9".repeat(10 * MAX_LINE_BYTES)));
        assert_eq!(
            e.to_string(),
            format!("t.csv:2: line longer than {MAX_LINE_BYTES} bytes: not CSV bar data")
        );
    }

    /// The bound holds across reads of any size: a line of exactly `MAX_LINE_BYTES` passes,
    /// one byte more is refused with its line, and the bytes before it are passed on.
    #[test]
    fn the_line_bound_is_exact_whatever_the_read_sizes() {
        fn read_through(text: &[u8], chunk: usize) -> (Vec<u8>, Option<CsvError>) {
            let mut checked = Checked::new(std::io::Cursor::new(text.to_vec()), "t.csv");
            let mut out = Vec::new();
            let mut buf = vec![0u8; chunk];
            loop {
                match checked.read(&mut buf) {
                    Ok(0) => return (out, None),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        let found = e
                            .get_ref()
                            .and_then(|e| e.downcast_ref::<CsvError>())
                            .cloned();
                        return (out, found);
                    }
                }
            }
        }
        for chunk in [1, 7, 4096, 64 * 1024, 300 * 1024] {
            let ok = format!("a\n{}\nb\n", "x".repeat(MAX_LINE_BYTES));
            let (out, e) = read_through(ok.as_bytes(), chunk);
            assert_eq!((out.len(), e), (ok.len(), None), "chunk {chunk}");
            let long = format!("a\n{}\nb\n", "x".repeat(MAX_LINE_BYTES + 1));
            let (out, e) = read_through(long.as_bytes(), chunk);
            assert_eq!(
                e.map(|e| e.to_string()),
                Some(format!(
                    "t.csv:2: line longer than {MAX_LINE_BYTES} bytes: not CSV bar data"
                )),
                "chunk {chunk}"
            );
            assert!(
                out.starts_with(b"a\n") && !out.contains(&b'b'),
                "chunk {chunk}"
            );
            let (out, e) = read_through(b"a\nbb\0c\n", chunk);
            assert_eq!(e.and_then(|e| e.line()), Some(2), "chunk {chunk}");
            assert_eq!(out, b"a\nbb", "chunk {chunk}");
        }
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        for path in [dir.path(), std::path::Path::new("/dev/zero")] {
            let e = CsvBarReader::open(&CsvSource::file(SymbolId(0), path)).expect_err("refused");
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: not a regular file (a folder, device or pipe): bar data must be a file",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn line_numbers_stay_physical_across_quoted_newlines() {
        let e = error_of(
            "timestamp,open,high,low,close,\"vol\nume\"\n\
             2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,x,10\n",
        );
        assert_eq!(e.line(), Some(4), "{e}");
    }

    #[test]
    fn quoted_fields_and_surrounding_spaces_are_read() {
        let bars =
            read_all(&format!("{HEADER}\"2024-01-01\", 1 ,\"3\",1,2.50 ,10\n")).expect("read");
        assert_eq!(bars[0].close, dec!(2.5));
    }

    #[test]
    fn timestamps_with_offsets_convert_to_utc() {
        let cases = [
            ("2024-01-15T09:30:00Z", "2024-01-15T09:30:00Z"),
            ("2024-01-15T09:30:00.123+01:00", "2024-01-15T08:30:00.123Z"),
            ("2024-01-15T09:30:00-05:00", "2024-01-15T14:30:00Z"),
            ("2024-01-15 09:30:00+0100", "2024-01-15T08:30:00Z"),
            ("2017-04-19T09:00:00", "2017-04-19T09:00:00Z"),
            ("2017-04-19 09:00:00", "2017-04-19T09:00:00Z"),
            ("2017-04-19T09:00:00.5", "2017-04-19T09:00:00.5Z"),
            ("2024-02-29", "2024-02-29T00:00:00Z"),
            ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
        ];
        for (raw, utc) in cases {
            assert_eq!(parse_timestamp(raw.as_bytes()), Some(t(utc)), "{raw}");
        }
    }

    #[test]
    fn fast_timestamp_path_agrees_with_chrono() {
        let mut ts = t("1999-12-28T00:00:00Z");
        while ts < t("2001-03-05T00:00:00Z") {
            let z = ts.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let space = ts.format("%Y-%m-%d %H:%M:%S").to_string();
            let date = ts.format("%Y-%m-%d").to_string();
            assert_eq!(parse_timestamp_fast(z.as_bytes()), Some(ts));
            assert_eq!(parse_timestamp_fast(space.as_bytes()), Some(ts));
            assert_eq!(
                parse_timestamp_fast(date.as_bytes()),
                Some(
                    ts.date_naive()
                        .and_hms_opt(0, 0, 0)
                        .expect("midnight")
                        .and_utc()
                )
            );
            ts += chrono::Duration::seconds(37_201);
        }
    }

    #[test]
    fn scientific_notation_is_read_exactly() {
        let bars = read_all(&format!("{HEADER}2024-01-01,1,2,1,2,1.5e3\n")).expect("read");
        assert_eq!(bars[0].volume, Some(dec!(1500)));
    }

    #[test]
    fn read_batch_respects_max_and_reports_the_end() {
        let mut text = HEADER.to_owned();
        for day in 1..=5 {
            text.push_str(&format!("2024-01-0{day},1,2,1,2,10\n"));
        }
        let mut reader = CsvBarReader::open(&source(&text)).expect("open");
        let mut out = Vec::new();
        assert_eq!(reader.read_batch(2, &mut out).expect("1"), 2);
        assert_eq!(reader.read_batch(2, &mut out).expect("2"), 2);
        assert_eq!(reader.read_batch(2, &mut out).expect("3"), 1);
        assert_eq!(reader.read_batch(2, &mut out).expect("4"), 0);
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].ts, t("2024-01-05T00:00:00Z"));
    }

    #[test]
    fn good_rows_come_before_the_error_which_then_sticks() {
        let text =
            format!("{HEADER}2024-01-01,1,2,1,2,10\n2024-01-02,1,2,1,2,10\nbad,1,2,1,2,10\n");
        let mut reader = CsvBarReader::open(&source(&text)).expect("open");
        let mut out = Vec::new();
        assert_eq!(reader.read_batch(10, &mut out).expect("good rows"), 2);
        let e = reader.read_batch(10, &mut out).expect_err("bad row");
        assert_eq!(e.line(), Some(4));
        assert_eq!(reader.read_batch(10, &mut out).expect_err("sticky"), e);
        assert_eq!(out.len(), 2);
    }

    fn rows(symbol_days: &[u32]) -> String {
        let mut text = HEADER.to_owned();
        for day in symbol_days {
            text.push_str(&format!("2024-01-{day:02},1,2,1,2,{day}\n"));
        }
        text
    }

    async fn drain(
        provider: &mut CsvReplayProvider,
        max: usize,
    ) -> Result<Vec<Bar>, ProviderError> {
        let mut out = Vec::new();
        while provider.next_batch(max, &mut out).await? {}
        Ok(out
            .into_iter()
            .map(|event| match event {
                MarketDataEvent::Bar(bar) => bar,
            })
            .collect())
    }

    #[tokio::test]
    async fn replay_merges_sources_by_time_then_symbol() {
        let a = CsvSource::bytes(SymbolId(1), "a.csv", rows(&[1, 3, 4, 6]).as_bytes());
        let b = CsvSource::bytes(SymbolId(0), "b.csv", rows(&[2, 3, 5, 7, 8]).as_bytes());
        let mut provider = CsvReplayProvider::new(vec![a, b], 2);
        assert_eq!(provider.name(), "csv:a.csv,b.csv");
        provider.connect().await.expect("connect");
        provider
            .subscribe(&[(SymbolId(0), "B".into()), (SymbolId(1), "A".into())])
            .await
            .expect("subscribe");
        // A max smaller than the batch size leaves a remainder for the next call.
        let bars = drain(&mut provider, 1).await.expect("replay");
        let order: Vec<(u32, u32)> = bars
            .iter()
            .map(|b| {
                (
                    b.volume.expect("volume").try_into().expect("day"),
                    b.symbol.0,
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (1, 1),
                (2, 0),
                (3, 0),
                (3, 1),
                (4, 1),
                (5, 0),
                (6, 1),
                (7, 0),
                (8, 0)
            ]
        );
        let health = provider.health();
        assert_eq!(health.events, 9);
        assert_eq!(health.last_event_at, Some(t("2024-01-08T00:00:00Z")));
        assert!(!health.connected);
        assert!(
            !provider
                .next_batch(10, &mut Vec::new())
                .await
                .expect("ended")
        );
    }

    #[tokio::test]
    async fn malformed_row_is_delivered_after_the_bars_before_it() {
        let mut bad = rows(&[1, 2, 3]);
        bad.push_str("2024-01-04,1,2,1,oops,4\n");
        let good = CsvSource::bytes(SymbolId(0), "good.csv", rows(&[1, 2, 3, 4, 5]).as_bytes());
        let bad = CsvSource::bytes(SymbolId(1), "bad.csv", bad.as_bytes());
        let mut provider = CsvReplayProvider::new(vec![good, bad], 4);
        provider.connect().await.expect("connect");
        let mut out = Vec::new();
        let err = loop {
            match provider.next_batch(100, &mut out).await {
                Ok(true) => {}
                Ok(false) => panic!("the replay ended without the error"),
                Err(e) => break e,
            }
        };
        let ProviderError::Malformed(message) = &err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!(
            message,
            "bad.csv:5: column 'close': cannot parse \"oops\" as a decimal"
        );
        // Every bar up to and including bad.csv's last good one (day 3, symbol 1).
        assert_eq!(out.len(), 6);
        assert_eq!(
            out.last(),
            Some(&MarketDataEvent::Bar(Bar {
                symbol: SymbolId(1),
                ts: t("2024-01-03T00:00:00Z"),
                open: dec!(1),
                high: dec!(2),
                low: dec!(1),
                close: dec!(2),
                volume: Some(dec!(3)),
            }))
        );
        assert_eq!(provider.health().errors, 1);
        assert!(matches!(
            provider.next_batch(100, &mut out).await,
            Err(ProviderError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn connect_fails_naming_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.csv");
        let mut provider = CsvReplayProvider::new(vec![CsvSource::file(SymbolId(0), &path)], 8);
        let err = provider.connect().await.expect_err("missing file");
        assert!(matches!(err, ProviderError::Connect { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(!provider.health().connected);
    }

    #[tokio::test]
    async fn connect_checks_headers_and_one_source_per_symbol() {
        let bad = CsvSource::bytes(SymbolId(0), "h.csv", &b"timestamp,open\n"[..]);
        let err = CsvReplayProvider::new(vec![bad], 8)
            .connect()
            .await
            .expect_err("bad header");
        assert!(
            err.to_string().contains("h.csv:1: missing column 'high'"),
            "{err}"
        );
        let a = CsvSource::bytes(SymbolId(0), "a.csv", rows(&[1]).as_bytes());
        let b = CsvSource::bytes(SymbolId(0), "b.csv", rows(&[1]).as_bytes());
        let err = CsvReplayProvider::new(vec![a, b], 8)
            .connect()
            .await
            .expect_err("duplicate symbol");
        assert!(
            err.to_string()
                .contains("symbol 0 has two sources: a.csv and b.csv"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn subscribe_rejects_a_symbol_without_a_source() {
        let a = CsvSource::bytes(SymbolId(0), "a.csv", rows(&[1]).as_bytes());
        let mut provider = CsvReplayProvider::new(vec![a], 8);
        let err = provider
            .subscribe(&[(SymbolId(3), "MSFT".into())])
            .await
            .expect_err("unknown");
        assert!(
            matches!(&err, ProviderError::UnknownSymbol { symbol, .. } if symbol == "MSFT"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn next_batch_before_connect_is_an_error() {
        let mut provider = CsvReplayProvider::new(Vec::new(), 8);
        assert!(matches!(
            provider.next_batch(8, &mut Vec::new()).await,
            Err(ProviderError::Stream { .. })
        ));
        provider.connect().await.expect("connect");
        assert!(
            !provider
                .next_batch(8, &mut Vec::new())
                .await
                .expect("empty replay")
        );
    }

    #[tokio::test]
    async fn dropping_the_provider_mid_replay_stops_the_thread_quietly() {
        let days: Vec<u32> = (1..=28).collect();
        let a = CsvSource::bytes(SymbolId(0), "a.csv", rows(&days).as_bytes());
        let mut provider = CsvReplayProvider::new(vec![a], 1);
        provider.connect().await.expect("connect");
        let mut out = Vec::new();
        assert!(provider.next_batch(1, &mut out).await.expect("first"));
        drop(provider);
    }

    fn real(file: &str) -> Vec<Bar> {
        let path = format!("{}/../../data/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut reader = CsvBarReader::open(&CsvSource::file(SymbolId(0), path)).expect("open");
        let mut out = Vec::new();
        while reader.read_batch(1000, &mut out).expect(file) > 0 {}
        out
    }

    #[test]
    fn shipped_data_files_read_cleanly() {
        for (file, rows, first, last) in [
            (
                "GOOG_1d.csv",
                2148,
                "2004-08-19T00:00:00Z",
                "2013-03-01T00:00:00Z",
            ),
            (
                "EURUSD_1h.csv",
                5000,
                "2017-04-19T09:00:00Z",
                "2018-02-07T15:00:00Z",
            ),
            (
                "ASML_AS_1d.csv",
                798,
                "2010-01-01T00:00:00Z",
                "2013-01-25T00:00:00Z",
            ),
        ] {
            let bars = real(file);
            assert_eq!(bars.len(), rows, "{file}");
            assert_eq!(bars.first().map(|b| b.ts), Some(t(first)), "{file}");
            assert_eq!(bars.last().map(|b| b.ts), Some(t(last)), "{file}");
        }
    }

    proptest! {
        #[test]
        fn fast_decimal_path_agrees_with_rust_decimal(
            negative in any::<bool>(),
            // Up to 19 digits with the dot: every input the fast path is meant to take.
            int in "[0-9]{1,11}",
            frac in proptest::option::of("[0-9]{1,8}"),
        ) {
            let text = format!(
                "{}{int}{}",
                if negative { "-" } else { "" },
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            let fast = parse_decimal_fast(text.as_bytes()).expect("plain decimal");
            let general = Decimal::from_str_exact(&text).expect("rust_decimal");
            prop_assert_eq!(fast, general);
            prop_assert_eq!(fast.scale(), general.scale());
        }
    }

    #[test]
    fn unusual_decimals_fall_back_to_the_general_parser() {
        for (raw, value) in [
            (".5", dec!(0.5)),
            ("+7", dec!(7)),
            ("1_000", dec!(1000)),
            ("2.5E-2", dec!(0.025)),
            ("12345678901234567890.5", dec!(12345678901234567890.5)),
        ] {
            assert_eq!(parse_decimal(raw.as_bytes()).expect(raw), value, "{raw}");
        }
        for bad in ["", "-", ".", "1.2.3", "NaN", "inf", "1e", "0x10"] {
            assert!(parse_decimal(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn price() -> impl Strategy<Value = Decimal> {
        (1i64..10_000_000_000, 0u32..9).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    fn arb_bars() -> impl Strategy<Value = Vec<Bar>> {
        let row = (
            1i64..200_000,
            0u32..1000,
            [price(), price(), price(), price()],
            (0i64..1_000_000_000_000, 0u32..5),
        );
        proptest::collection::vec(row, 0..40).prop_map(|rows| {
            let mut secs = 946_684_800; // 2000-01-01
            rows.into_iter()
                .map(|(step, millis, mut prices, (vol, vol_scale))| {
                    secs += step;
                    prices.sort();
                    let [low, a, b, high] = prices;
                    Bar {
                        symbol: SymbolId(0),
                        ts: DateTime::from_timestamp(secs, millis * 1_000_000).expect("in range"),
                        open: a,
                        high,
                        low,
                        close: b,
                        volume: Some(Decimal::new(vol, vol_scale)),
                    }
                })
                .collect()
        })
    }

    fn write_ts(ts: Timestamp, style: u8) -> String {
        let whole = ts.timestamp_subsec_nanos() == 0;
        match style % 4 {
            1 => ts
                .with_timezone(&FixedOffset::east_opt(5400).expect("offset"))
                .to_rfc3339_opts(SecondsFormat::AutoSi, false),
            2 if whole => ts.format("%Y-%m-%d %H:%M:%S").to_string(),
            3 if whole => ts.format("%Y-%m-%dT%H:%M:%S").to_string(),
            _ => ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }

    proptest! {
        #[test]
        fn bars_written_then_read_round_trip_exactly(bars in arb_bars(), style in any::<u8>()) {
            let mut text = String::from("volume,close,low,high,open,timestamp\n");
            for (i, b) in bars.iter().enumerate() {
                text.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    b.volume.expect("volume"), b.close, b.low, b.high, b.open,
                    write_ts(b.ts, style.wrapping_add(i as u8))
                ));
            }
            let read = read_all(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&read, &bars);
            for (r, b) in read.iter().zip(&bars) {
                // Equal and with the same digits: nothing was rounded on the way.
                prop_assert_eq!(r.close.to_string(), b.close.to_string());
                prop_assert_eq!(r.volume.map(|v| v.to_string()), b.volume.map(|v| v.to_string()));
            }
        }
    }

    /// Release-mode throughput: `cargo test --release -p vigil-providers -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn throughput_one_million_rows() {
        const ROWS: usize = 1_000_000;
        let mut file = tempfile::NamedTempFile::new().expect("tempfile");
        {
            let mut w = std::io::BufWriter::new(file.as_file_mut());
            w.write_all(HEADER.as_bytes()).expect("header");
            let mut ts = t("2020-01-01T00:00:00Z");
            for i in 0..ROWS {
                let base = 10_000 + (i % 977) as i64;
                writeln!(
                    w,
                    "{},{}.25,{}.75,{}.05,{}.5,{}",
                    ts.format("%Y-%m-%dT%H:%M:%SZ"),
                    base,
                    base + 1,
                    base - 1,
                    base,
                    1000 + i % 5000
                )
                .expect("row");
                ts += chrono::Duration::minutes(1);
            }
            w.flush().expect("flush");
        }
        let source = CsvSource::file(SymbolId(0), file.path());

        // Best of several runs: the figure is the parser's cost, not the machine's noise.
        let mut best = std::time::Duration::MAX;
        let mut out = Vec::with_capacity(4096);
        for _ in 0..5 {
            let start = std::time::Instant::now();
            let mut reader = CsvBarReader::open(&source).expect("open");
            let mut total = 0;
            loop {
                out.clear();
                let n = reader.read_batch(4096, &mut out).expect("read");
                if n == 0 {
                    break;
                }
                total += n;
            }
            best = best.min(start.elapsed());
            assert_eq!(total, ROWS);
        }
        println!(
            "CsvBarReader: {ROWS} rows in {best:.2?}: {:.0} rows/s, {:.0} ns/row",
            ROWS as f64 / best.as_secs_f64(),
            best.as_nanos() as f64 / ROWS as f64
        );

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut best = std::time::Duration::MAX;
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let delivered = runtime.block_on(async {
                let mut provider = CsvReplayProvider::new(vec![source.clone()], 1024);
                provider.connect().await.expect("connect");
                let mut out = Vec::with_capacity(1024);
                let mut total = 0;
                loop {
                    out.clear();
                    if !provider.next_batch(1024, &mut out).await.expect("replay") {
                        break total;
                    }
                    total += out.len();
                }
            });
            best = best.min(start.elapsed());
            assert_eq!(delivered, ROWS);
        }
        println!(
            "CsvReplayProvider: {ROWS} events in {best:.2?}: {:.0} events/s",
            ROWS as f64 / best.as_secs_f64()
        );
    }
}
