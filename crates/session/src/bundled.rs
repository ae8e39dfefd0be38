//! Market data compiled into the binary, so `vigil run` works on a machine with nothing
//! but the binary. Provenance: `data/README.md`.

/// Names of the bundled files (use as `bundled:NAME` in an instrument's path).
pub const BUNDLED_FILES: &[&str] = &["GOOG_1d.csv", "EURUSD_1h.csv", "ASML_AS_1d.csv"];

/// Returns the bytes of a bundled file.
pub fn bundled(name: &str) -> Option<&'static [u8]> {
    match name {
        "GOOG_1d.csv" => Some(include_bytes!("../../../data/GOOG_1d.csv")),
        "EURUSD_1h.csv" => Some(include_bytes!("../../../data/EURUSD_1h.csv")),
        "ASML_AS_1d.csv" => Some(include_bytes!("../../../data/ASML_AS_1d.csv")),
        _ => None,
    }
}
