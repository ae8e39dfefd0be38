//! Naming and finding log files: `vigil-NNNNNN-YYYYMMDD.jsonl`, numbered in write order.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// One log file of a log folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    /// Its number: files are written in increasing number order.
    pub number: u64,
    /// The exchange date (America/New_York) it was opened on.
    pub date: NaiveDate,
    /// Its path.
    pub path: PathBuf,
}

/// Returns the file name for `number` opened on `date`.
pub(crate) fn file_name(number: u64, date: NaiveDate) -> String {
    format!("vigil-{number:06}-{}.jsonl", date.format("%Y%m%d"))
}

fn parse_name(name: &str) -> Option<(u64, NaiveDate)> {
    let rest = name.strip_prefix("vigil-")?.strip_suffix(".jsonl")?;
    let (num, date) = rest.split_once('-')?;
    if num.len() < 6 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    Some((num.parse().ok()?, date))
}

/// Lists the log files of `dir` in write order. A folder that does not exist has none.
///
/// # Errors
/// Fails when the folder cannot be read.
pub fn list_log_files(dir: &Path) -> std::io::Result<Vec<LogFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((number, date)) = name.to_str().and_then(parse_name) {
            files.push(LogFile {
                number,
                date,
                path: entry.path(),
            });
        }
    }
    files.sort_by_key(|f| f.number);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_number() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 15).expect("date");
        let n = file_name(42, d);
        assert_eq!(n, "vigil-000042-20240115.jsonl");
        assert_eq!(parse_name(&n), Some((42, d)));
        assert_eq!(parse_name("vigil.jsonl"), None);
        assert_eq!(parse_name("vigil-42-20240115.jsonl"), None);
    }
}
