//! A small tmpfs that a test can fill up and free again: the real "disk full" of a
//! store (mounting needs root or CAP_SYS_ADMIN; without it the test fails loudly).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh temporary directory; unmounted on drop.
pub struct Tmpfs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs to fill a real disk and needs root (or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { mnt, _dir: dir }
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// Fill the file system with a filler file until writes fail with "no space".
    pub fn fill(&self) -> PathBuf {
        let path = self.mnt.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write_all(&chunk).and_then(|_| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs failed: {e}"),
            }
        }
        path
    }

    /// Give the space of the filler back.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.mnt.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}
