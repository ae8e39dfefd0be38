//! Standard output that a reader who stops reading cannot crash.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe (`vigil logs | head -1`) fails with
//! `BrokenPipe`, and `println!` panics on it (exit 101). Resetting SIGPIPE to its default
//! would need `unsafe` (forbidden here) and would also kill `vigil run` mid-session when a
//! pipe it logs to closes. Instead, this module's `println!`, `print!`, `eprintln!` and
//! `eprint!` shadow the standard ones in every module of the binary (they are defined
//! before the other modules): once the reader has gone, output is dropped quietly and the
//! command finishes with its own exit code — `vigil logs verify | head -1` still exits 1
//! on a bad log. Any other error writing standard output is said on standard error and
//! makes the command exit 2 (see [`failure`]).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes to standard output, then a newline when `newline`.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let res = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = res {
        closed(&e);
    }
}

/// Writes to standard error, then a newline when `newline`. When standard error itself
/// cannot be written there is nowhere left to say so: the text is dropped.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut err = std::io::stderr().lock();
    let res = err.write_fmt(args).and_then(|()| {
        if newline {
            err.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if res.is_err() {
        // Nowhere left to report it (see above).
    }
}

/// Stops writing standard output; remembers an error other than the reader going away.
fn closed(e: &std::io::Error) {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let mut error = STDOUT_ERROR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        error.get_or_insert_with(|| e.to_string());
    }
}

/// Tells whether the reader of standard output has gone (nothing more is written).
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Flushes standard output and returns the error that stopped it, if one other than the
/// reader going away did.
pub(crate) fn failure() -> Option<String> {
    if !stdout_closed()
        && let Err(e) = std::io::stdout().lock().flush()
    {
        closed(&e);
    }
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// `println!` that a closed standard output does not crash (see the module).
macro_rules! println {
    () => {
        $crate::out::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!($($arg)*), true)
    };
}

/// `print!` that a closed standard output does not crash.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::out::write_out(format_args!($($arg)*), false)
    };
}

/// `eprintln!` that a closed standard error does not crash.
macro_rules! eprintln {
    () => {
        $crate::out::write_err(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!($($arg)*), true)
    };
}

/// `eprint!` that a closed standard error does not crash (none uses it yet; any that
/// comes is covered).
#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!($($arg)*), false)
    };
}
