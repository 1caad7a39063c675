//! Request capture for debugging and fixtures: with `TFPLUGIN_CAPTURE_DIR` set, every
//! DynamicValue Terraform sends is written to `<dir>/<pid>-<seq>-<rpc>-<type>-<field>.msgpack`
//! (the requests that carry values are listed at the end of this file).

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

    /// Writes the DynamicValues of one request (no-op unless capturing).
    pub(crate) fn request<R: Captured>(&self, req: &R) {
        for (field, dv) in req.values() {
            self.value(R::RPC, req.about(), field, dv);
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

/// A request that carries DynamicValues.
pub(crate) trait Captured {
    /// The RPC, e.g. `ApplyResourceChange`.
    const RPC: &'static str;
    /// The resource or data source type the request is about, or `provider`.
    fn about(&self) -> &str;
    /// The request's DynamicValues by field name.
    fn values(&self) -> Vec<(&'static str, Option<&pb::DynamicValue>)>;
}

/// Implements [`Captured`]: `module RpcName (type_name | provider) [value fields]`.
macro_rules! captured {
    ($($module:ident $rpc:ident ($about:ident) [$($field:ident),+];)*) => {$(
        impl Captured for pb::$module::Request {
            const RPC: &'static str = stringify!($rpc);
            fn about(&self) -> &str {
                captured!(@about self $about)
            }
            fn values(&self) -> Vec<(&'static str, Option<&pb::DynamicValue>)> {
                vec![$((stringify!($field), self.$field.as_ref())),+]
            }
        }
    )*};
    (@about $req:ident type_name) => {
        &$req.type_name
    };
    (@about $req:ident provider) => {
        "provider"
    };
}

captured! {
    validate_provider_config ValidateProviderConfig (provider) [config];
    configure_provider ConfigureProvider (provider) [config];
    validate_resource_config ValidateResourceConfig (type_name) [config];
    validate_data_resource_config ValidateDataResourceConfig (type_name) [config];
    read_resource ReadResource (type_name) [current_state];
    plan_resource_change PlanResourceChange (type_name) [prior_state, proposed_new_state, config];
    apply_resource_change ApplyResourceChange (type_name) [prior_state, planned_state, config];
    read_data_source ReadDataSource (type_name) [config];
}
