//! The log read from disk after its writer: the complete lines after a cursor, across
//! files, and the cursor saved once the stream has acknowledged them.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The cursor file, in the log folder (not a log file: the log's readers skip it).
pub(crate) const CURSOR_FILE: &str = "fleet-cursor.json";

/// The most read at once from one file.
const CHUNK: u64 = 1 << 20;

/// How far the stream has acknowledged the log: up to `offset` bytes of log file `number`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub(crate) number: u64,
    pub(crate) offset: u64,
}

/// One complete line, with where it ends.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    /// The line's bytes (JSON, without its newline), as the message's payload.
    pub(crate) text: bytes::Bytes,
    /// The line's `seq`, `hash` and `event`.
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) event: String,
    /// The cursor just after it.
    pub(crate) end: Cursor,
}

/// The log folder read from a cursor.
#[derive(Debug)]
pub(crate) struct Tail {
    dir: PathBuf,
    pub(crate) cursor: Cursor,
}

impl Tail {
    /// Reads the saved cursor of `dir`; none saved: from the start of the log.
    ///
    /// # Errors
    /// The cursor file exists and cannot be read or understood (the message names it).
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(CURSOR_FILE);
        let cursor = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a fleet cursor: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cursor::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            cursor,
        })
    }

    /// Up to `max` complete lines after the cursor, in the order written (the cursor does
    /// not move: [`Tail::commit`] moves it).
    ///
    /// # Errors
    /// A log file cannot be read, or a complete line is not a log line (the message names
    /// the file and the byte offset).
    pub(crate) fn pending(&self, max: usize) -> Result<Vec<Line>, String> {
        let files = vigil_log::list_log_files(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut out = Vec::new();
        for f in files.iter().filter(|f| f.number >= self.cursor.number) {
            let mut offset = if f.number == self.cursor.number {
                self.cursor.offset
            } else {
                0
            };
            let what = |e: std::io::Error| format!("{}: {e}", f.path.display());
            let mut file = std::fs::File::open(&f.path).map_err(what)?;
            file.seek(SeekFrom::Start(offset)).map_err(what)?;
            let mut bytes = Vec::new();
            file.take(CHUNK).read_to_end(&mut bytes).map_err(what)?;
            let mut rest = &bytes[..];
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                let raw = &rest[..end];
                rest = &rest[end + 1..];
                let at = offset;
                offset += end as u64 + 1;
                if raw.is_empty() {
                    continue;
                }
                let text = std::str::from_utf8(raw)
                    .map_err(|e| format!("{} at byte {at}: {e}", f.path.display()))?;
                let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                    format!("{} at byte {at}: not a log line: {e}", f.path.display())
                })?;
                let (Some(seq), Some(hash), Some(event)) =
                    (v["seq"].as_u64(), v["hash"].as_str(), v["event"].as_str())
                else {
                    return Err(format!(
                        "{} at byte {at}: a log line without seq, hash or event",
                        f.path.display()
                    ));
                };
                out.push(Line {
                    text: bytes::Bytes::copy_from_slice(raw),
                    seq,
                    hash: hash.to_string(),
                    event: event.to_string(),
                    end: Cursor {
                        number: f.number,
                        offset,
                    },
                });
                if out.len() >= max {
                    return Ok(out);
                }
            }
            // A half-written last line waits for the writer; a later file is not read
            // before this one's lines are all complete and read.
            if !rest.is_empty() || bytes.len() as u64 == CHUNK {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Moves the cursor to `to` and saves it (written beside, then renamed over).
    ///
    /// # Errors
    /// The cursor file cannot be written (the message names it).
    pub(crate) fn commit(&mut self, to: Cursor) -> Result<(), String> {
        let path = self.dir.join(CURSOR_FILE);
        let tmp = self.dir.join(format!("{CURSOR_FILE}.tmp"));
        let text = serde_json::to_string(&to).map_err(|e| format!("the fleet cursor: {e}"))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.cursor = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> String {
        format!("{{\"event\":\"e{seq}\",\"seq\":{seq},\"prev_hash\":\"p\",\"hash\":\"h{seq}\"}}\n")
    }

    #[test]
    fn complete_lines_come_across_files_from_the_saved_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("vigil-000001-20261204.jsonl");
        let second = dir.path().join("vigil-000002-20261205.jsonl");
        std::fs::write(&first, format!("{}{}", line(1), line(2))).expect("write");
        // The second file's last line is half written.
        std::fs::write(&second, format!("{}{{\"event\":\"e4\"", line(3))).expect("write");
        let mut tail = Tail::open(dir.path()).expect("no cursor yet");
        let lines = tail.pending(10).expect("read");
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(lines[2].hash, "h3");
        assert_eq!(lines[0].event, "e1");
        // Two acknowledged: the cursor is saved and read back by a new tail (a restart).
        tail.commit(lines[1].end.clone()).expect("commit");
        let tail = Tail::open(dir.path()).expect("cursor");
        assert_eq!(tail.cursor, lines[1].end);
        let rest = tail.pending(10).expect("read");
        assert_eq!(rest.iter().map(|l| l.seq).collect::<Vec<_>>(), [3]);
        // The cursor file is not a log file.
        assert_eq!(
            vigil_log::list_log_files(dir.path()).expect("list").len(),
            2
        );
    }

    #[test]
    fn a_line_that_is_not_a_log_line_is_named_with_its_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("vigil-000001-20261204.jsonl");
        std::fs::write(&f, format!("{}not json\n", line(1))).expect("write");
        let e = Tail::open(dir.path())
            .expect("open")
            .pending(10)
            .expect_err("refused");
        assert!(
            e.contains("vigil-000001-20261204.jsonl at byte") && e.contains("not a log line"),
            "{e}"
        );
        std::fs::write(dir.path().join(CURSOR_FILE), "{").expect("write");
        let e = Tail::open(dir.path()).expect_err("a broken cursor");
        assert!(e.contains("not a fleet cursor"), "{e}");
    }
}
