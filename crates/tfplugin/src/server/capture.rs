//! Request capture for debugging and fixtures: with `TFPLUGIN_CAPTURE_DIR` set, every
//! DynamicValue Terraform sends is written to `<dir>/<seq>-<rpc>-<field>.msgpack`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pb::tfplugin6 as pb;

/// Environment variable naming the capture directory.
pub(crate) const CAPTURE_ENV: &str = crate::CAPTURE_ENV;

#[derive(Debug)]
pub(crate) struct Capture {
    dir: Option<PathBuf>,
    seq: AtomicU64,
}

impl Capture {
    pub(crate) fn from_env() -> Capture {
        let dir = std::env::var_os(CAPTURE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Capture {
            dir,
            seq: AtomicU64::new(0),
        }
    }

    /// Writes the named DynamicValues of one request (no-op unless capturing).
    pub(crate) fn values(
        &self,
        rpc: &str,
        type_name: &str,
        fields: &[(&str, Option<&pb::DynamicValue>)],
    ) {
        for &(field, dv) in fields {
            self.value(rpc, type_name, field, dv);
        }
    }

    fn value(&self, rpc: &str, type_name: &str, field: &str, dv: Option<&pb::DynamicValue>) {
        let (Some(dir), Some(dv)) = (&self.dir, dv) else {
            return;
        };
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}-{n:04}-{rpc}-{type_name}-{field}.msgpack",
            std::process::id()
        );
        if let Err(e) =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join(name), &dv.msgpack))
        {
            tracing::warn!(error = %e, "cannot write captured request value");
        }
    }
}
