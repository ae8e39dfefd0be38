//! Service-level samples: CPU, memory and free disk, from `sysinfo`.

use std::path::{Path, PathBuf};

use sysinfo::{RefreshKind, System};

/// One reading of the machine.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemSample {
    /// Whole-machine CPU use, 0..1, since the previous sample (`None` on the first, which
    /// has nothing to compare with).
    pub cpu_ratio: Option<f64>,
    /// Used memory over total memory, 0..1.
    pub memory_ratio: f64,
    /// Free bytes on the watched volume, or why it could not be read.
    pub disk_free_bytes: Result<u64, SampleError>,
}

/// Why the machine or a volume could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// The platform's system information cannot be read.
    #[error("reading system information: {0}")]
    System(String),
    /// The path cannot be made absolute.
    #[error("resolving {path}: {reason}")]
    Resolve {
        /// The path given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The mounted volumes cannot be listed.
    #[error("listing disks: {0}")]
    Disks(String),
    /// No mounted volume holds the path.
    #[error("no mounted volume holds {}", .0.display())]
    NoVolume(PathBuf),
}

/// Samples the machine; keeps the previous CPU counters between calls.
#[derive(Debug)]
pub struct SystemSampler {
    sys: System,
    disk_path: PathBuf,
    primed: bool,
}

impl SystemSampler {
    /// Watches the volume that holds `disk_path`.
    ///
    /// # Errors
    /// Fails when the platform's system information cannot be read.
    pub fn new(disk_path: PathBuf) -> Result<Self, SampleError> {
        let sys = System::new_with_specifics(RefreshKind::nothing())
            .map_err(|e| SampleError::System(e.to_string()))?;
        Ok(Self {
            sys,
            disk_path,
            primed: false,
        })
    }

    /// Reads CPU, memory and disk. A few hundred microseconds: the Monitor calls it on its
    /// own thread, never on the pipeline's.
    pub fn sample(&mut self) -> SystemSample {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let cpu_ratio = self
            .primed
            .then(|| f64::from(self.sys.global_cpu_usage()) / 100.0);
        self.primed = true;
        let total = self.sys.total_memory();
        let memory_ratio = if total == 0 {
            0.0
        } else {
            self.sys.used_memory() as f64 / total as f64
        };
        SystemSample {
            cpu_ratio,
            memory_ratio,
            disk_free_bytes: free_space(&self.disk_path),
        }
    }
}

/// Free space on the volume holding `path`, in bytes (the longest matching mount point).
///
/// # Errors
/// Fails when the path cannot be resolved or no mounted volume holds it.
pub fn free_space(path: &Path) -> Result<u64, SampleError> {
    let abs = std::path::absolute(path).map_err(|e| SampleError::Resolve {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let disks =
        sysinfo::Disks::new_with_refreshed_list().map_err(|e| SampleError::Disks(e.to_string()))?;
    disks
        .iter()
        .filter(|d| abs.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
        .ok_or(SampleError::NoVolume(abs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = SystemSampler::new(dir.path().to_path_buf()).expect("sampler");
        let first = s.sample();
        assert_eq!(first.cpu_ratio, None, "the first sample has no interval");
        assert!(
            first.memory_ratio > 0.0 && first.memory_ratio <= 1.0,
            "{first:?}"
        );
        assert!(first.disk_free_bytes.is_ok(), "{first:?}");
        let second = s.sample();
        let cpu = second.cpu_ratio.expect("second sample has an interval");
        assert!((0.0..=1.0).contains(&cpu), "{cpu}");
    }
}
