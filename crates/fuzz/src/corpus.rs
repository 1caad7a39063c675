//! Corpus directories: one input per file, named by a hash of its bytes.

use std::path::{Path, PathBuf};

use crate::FuzzError;

/// The checked-in corpus of `target`.
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Every file of `dir`, in name order (a missing directory is an empty corpus).
pub fn read(dir: &Path) -> Result<Vec<Vec<u8>>, FuzzError> {
    let err = |source| FuzzError::ReadCorpus {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    paths.sort();
    paths
        .iter()
        .map(|p| {
            std::fs::read(p).map_err(|source| FuzzError::ReadCorpus {
                path: p.display().to_string(),
                source,
            })
        })
        .collect()
}

/// Writes `input` into `dir` as `<hash>`; returns its path.
pub fn write(dir: &Path, input: &[u8]) -> Result<PathBuf, FuzzError> {
    let path = dir.join(format!("{:016x}", fnv1a(input)));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, input))
        .map_err(|source| FuzzError::WriteCorpus {
            path: path.display().to_string(),
            source,
        })?;
    Ok(path)
}

/// FNV-1a: a stable name for an input (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
