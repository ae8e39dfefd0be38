//! Files a test hands to vigil.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Writes a secret file (an API secret, a TLS key) as an operator must: readable by its
/// owner only (mode 0600), or vigil refuses it.
///
/// # Panics
/// When the file cannot be written (a test's own folder).
pub fn write_secret_file(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}
