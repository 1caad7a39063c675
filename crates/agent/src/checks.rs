//! The checks the API runs on a pool or policy before storing it, beyond the spec's own
//! rules (`PoolSpec::validate`, `Policy::validate`):
//!
//! - what ECS accepts in a create request ([`flexus_cloud::limits`]): a pool ECS can never
//!   create is refused with 400 naming the field, so it is never stored;
//! - the flavor catalogue and images of the cloud ([`CloudFacts`], cached): an unknown
//!   flavor is refused with the closest names, an image the project does not have (or whose
//!   minimum disk is larger than the pool's root volume) by name;
//! - bounds across a pool and its policy ([`flexus_api::policy_bounds_errors`], shared with
//!   the provider's plan): a policy may narrow its pool's bounds, never widen them.
//!
//! [`CloudFacts`] is also what `GET /v1/cloud/flavors`, `/v1/cloud/images/{id}` and
//! `/v1/cloud/quota` serve.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flexus_api::{FieldError, FlavorInfo, ImageInfo, PoolSpec, QuotaInfo};
use flexus_cloud::{Cloud, CloudError, limits};
use tokio::sync::Mutex;

use crate::clock::{Millis, SharedClock};

/// How long the flavor catalogue is reused (clock time).
const FLAVORS_TTL: Duration = Duration::from_secs(600);
/// How long the quota is reused.
const QUOTA_TTL: Duration = Duration::from_secs(15);
/// How long a failed lookup is remembered before the cloud is asked again.
const ERROR_TTL: Duration = Duration::from_secs(30);

/// A value fetched from the cloud at a time, or the error of the last try.
type Cached<T> = Option<(Millis, Result<T, CloudError>)>;

/// What the cloud offers, fetched on demand and cached: flavors and the quota.
#[derive(Debug)]
pub struct CloudFacts {
    cloud: Arc<dyn Cloud>,
    clock: SharedClock,
    flavors: Mutex<Cached<Arc<Vec<FlavorInfo>>>>,
    quota: Mutex<Cached<QuotaInfo>>,
    /// Images by id (`None`: the cloud has no such image).
    images: Mutex<HashMap<String, Cached<Option<ImageInfo>>>>,
}

fn fresh<T: Clone>(c: &Cached<T>, now: Millis, ttl: Duration) -> Option<Result<T, CloudError>> {
    let (at, v) = c.as_ref()?;
    let ttl = if v.is_ok() { ttl } else { ERROR_TTL };
    (now - at < ttl.as_millis() as i64).then(|| v.clone())
}

impl CloudFacts {
    pub fn new(cloud: Arc<dyn Cloud>, clock: SharedClock) -> Self {
        Self {
            cloud,
            clock,
            flavors: Mutex::new(None),
            quota: Mutex::new(None),
            images: Mutex::new(HashMap::new()),
        }
    }

    /// The flavors the cloud offers, by name.
    pub async fn flavors(&self) -> Result<Arc<Vec<FlavorInfo>>, CloudError> {
        let mut slot = self.flavors.lock().await;
        let now = self.clock.now_ms();
        if let Some(v) = fresh(&slot, now, FLAVORS_TTL) {
            return v;
        }
        let got = self.cloud.list_flavors(None).await.map(|list| {
            let mut out: Vec<FlavorInfo> = list
                .into_iter()
                .map(|f| FlavorInfo {
                    on_sale: f.on_sale(),
                    spot: f
                        .spot_status
                        .as_deref()
                        .is_some_and(|s| !matches!(s, "abandon" | "sellout")),
                    name: f.id,
                    vcpus: f.vcpus,
                    memory_mb: f.ram_mb,
                    gpus: f.gpus,
                    performance_type: f.performance_type,
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Arc::new(out)
        });
        if let Err(e) = &got {
            tracing::warn!(error = %e, "cannot list the cloud's flavors");
        }
        *slot = Some((now, got.clone()));
        got
    }

    /// The image with this id, `None` when the cloud has no such image (a missing image
    /// is remembered as briefly as an error: it may be uploaded any moment).
    pub async fn image(&self, id: &str) -> Result<Option<ImageInfo>, CloudError> {
        let mut images = self.images.lock().await;
        let now = self.clock.now_ms();
        if let Some(Some((at, v))) = images.get(id) {
            let ttl = if matches!(v, Ok(Some(_))) {
                FLAVORS_TTL
            } else {
                ERROR_TTL
            };
            if now - at < ttl.as_millis() as i64 {
                return v.clone();
            }
        }
        let got = self.cloud.get_image(id).await.map(|i| {
            i.map(|i| ImageInfo {
                id: i.id,
                name: i.name,
                status: i.status,
                min_disk_gb: i.min_disk,
            })
        });
        if images.len() > 4096 {
            images.clear();
        }
        images.insert(id.to_string(), Some((now, got.clone())));
        got
    }

    /// The project's instance quota and what is used of it.
    pub async fn quota(&self) -> Result<QuotaInfo, CloudError> {
        let mut slot = self.quota.lock().await;
        let now = self.clock.now_ms();
        if let Some(v) = fresh(&slot, now, QUOTA_TTL) {
            return v;
        }
        let got = self.cloud.get_quota().await.map(|q| QuotaInfo {
            max_instances: q.max_instances,
            used_instances: q.used_instances,
            max_vcpus: q.max_cores,
            used_vcpus: q.used_cores,
            max_memory_mb: q.max_ram_mb,
            used_memory_mb: q.used_ram_mb,
        });
        *slot = Some((now, got.clone()));
        got
    }
}

/// What in `spec` ECS can never create (fields under `spec.`).
pub fn ecs_errors(spec: &PoolSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !limits::is_root_volume_type(&spec.root_volume.volume_type) {
        errs.push(FieldError::new(
            "spec.root_volume.type",
            format!(
                "{:?} is not an ECS disk type; use one of {}",
                spec.root_volume.volume_type,
                limits::ROOT_VOLUME_TYPES.join(", ")
            ),
        ));
    }
    if spec.subnet_ids.len() > limits::MAX_NICS {
        errs.push(FieldError::new(
            "spec.subnet_ids",
            format!(
                "at most {} subnets (ECS gives a server one NIC per subnet, at most {}), got {}",
                limits::MAX_NICS,
                limits::MAX_NICS,
                spec.subnet_ids.len()
            ),
        ));
    }
    if let Some(u) = &spec.user_data
        && u.len() > limits::MAX_USER_DATA_BYTES
    {
        errs.push(FieldError::new(
            "spec.user_data",
            format!(
                "is {} bytes; ECS accepts at most {} bytes (32 KB) of user data",
                u.len(),
                limits::MAX_USER_DATA_BYTES
            ),
        ));
    }
    errs
}

/// `spec.flavor` when the cloud does not offer it, with the closest names.
pub fn flavor_errors(spec: &PoolSpec, offered: &[FlavorInfo]) -> Vec<FieldError> {
    if offered.iter().any(|f| f.name == spec.flavor) {
        return Vec::new();
    }
    vec![FieldError::new(
        "spec.flavor",
        flexus_api::unknown_flavor_message(&spec.flavor, offered),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flavor(name: &str) -> FlavorInfo {
        FlavorInfo {
            name: name.into(),
            vcpus: 1,
            memory_mb: 1024,
            gpus: 0,
            on_sale: true,
            spot: false,
            performance_type: None,
        }
    }

    fn spec() -> PoolSpec {
        serde_json::from_value(serde_json::json!({
            "flavor": "x1.2u.4g", "image": "img", "vpc_id": "vpc", "subnet_ids": ["s"],
            "min_size": 1, "max_size": 2
        }))
        .expect("spec")
    }

    #[test]
    fn an_unknown_flavor_names_the_closest_offered_ones() {
        let offered: Vec<FlavorInfo> = ["x1.1u.1g", "x1.1u.4g", "x1.2u.4g", "g6.8u.32g"]
            .into_iter()
            .map(flavor)
            .collect();
        let mut s = spec();
        assert!(flavor_errors(&s, &offered).is_empty());
        s.flavor = "x1.1u.2g".into();
        let e = flavor_errors(&s, &offered);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "spec.flavor");
        assert!(e[0].message.contains("x1.1u.1g"), "{}", e[0].message);
        assert!(!e[0].message.contains("g6.8u.32g"), "{}", e[0].message);
    }

    #[test]
    fn specs_ecs_can_never_create_name_each_field() {
        let mut s = spec();
        assert!(ecs_errors(&s).is_empty());
        s.root_volume.volume_type = "FOO".into();
        s.subnet_ids = (0..13).map(|i| format!("s{i}")).collect();
        s.user_data = Some("x".repeat(60 * 1024));
        let fields: Vec<String> = ecs_errors(&s).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["spec.root_volume.type", "spec.subnet_ids", "spec.user_data"]
        );
    }
}
