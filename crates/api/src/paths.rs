//! URL paths of the `/v1` API, one function per resource so client and server agree.

/// `/v1/namespaces/{ns}/pools`
pub fn pools(ns: &str) -> String {
    format!("/v1/namespaces/{ns}/pools")
}
/// `/v1/namespaces/{ns}/pools/{name}`
pub fn pool(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}")
}
/// `/v1/namespaces/{ns}/pools/{name}/status`
pub fn pool_status(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/status")
}
/// `/v1/namespaces/{ns}/pools/{name}/decisions`
pub fn decisions(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/decisions")
}
/// `/v1/namespaces/{ns}/pools/{name}/operations`
pub fn operations(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/operations")
}
/// `/v1/namespaces/{ns}/pools/{name}/reconcile`
pub fn reconcile(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/reconcile")
}
/// `/v1/namespaces/{ns}/pools/{name}/metrics`
pub fn pool_metrics(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/metrics")
}
/// `/v1/namespaces/{ns}/policies`
pub fn policies(ns: &str) -> String {
    format!("/v1/namespaces/{ns}/policies")
}
/// `/v1/namespaces/{ns}/policies/{name}`
pub fn policy(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/policies/{name}")
}
/// `/v1/namespaces`
pub const NAMESPACES: &str = "/v1/namespaces";
/// `/v1/openapi.json`
pub const OPENAPI: &str = "/v1/openapi.json";
/// `/v1/cloud/flavors` (what the cloud offers, cached by the agent)
pub const CLOUD_FLAVORS: &str = "/v1/cloud/flavors";
/// `/v1/cloud/quota`
pub const CLOUD_QUOTA: &str = "/v1/cloud/quota";
/// `/v1/cloud/images/{id}`
pub fn cloud_image(id: &str) -> String {
    format!("/v1/cloud/images/{id}")
}
/// `/v1/namespaces/{ns}/pools/{name}/tune`
pub fn tune(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/tune")
}
/// `/v1/namespaces/{ns}/pools/{name}/tune/{id}`
pub fn tune_job(ns: &str, name: &str, id: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/tune/{id}")
}
