//! AK/SK credentials (optionally temporary, with an STS security token).

use std::fmt;

use crate::error::{CloudError, ErrorKind};

/// Environment variables read by [`Credentials::from_env`], in order of preference.
pub const ENV_ACCESS_KEY: &[&str] = &[
    "HUAWEICLOUD_SDK_AK",
    "HW_ACCESS_KEY",
    "HUAWEICLOUD_ACCESS_KEY",
    "CLOUD_SDK_AK",
];
/// Secret key variables, same order.
pub const ENV_SECRET_KEY: &[&str] = &[
    "HUAWEICLOUD_SDK_SK",
    "HW_SECRET_KEY",
    "HUAWEICLOUD_SECRET_KEY",
    "CLOUD_SDK_SK",
];
/// Security token variables, same order.
pub const ENV_SECURITY_TOKEN: &[&str] = &[
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HW_SECURITY_TOKEN",
    "HUAWEICLOUD_SECURITY_TOKEN",
];

/// An access key / secret key pair. `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

impl Credentials {
    /// Permanent credentials.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Adds the STS token of temporary credentials (sent and signed as `X-Security-Token`).
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Reads `HUAWEICLOUD_SDK_AK`/`HUAWEICLOUD_SDK_SK`/`HUAWEICLOUD_SDK_SECURITY_TOKEN`
    /// (or the `HW_ACCESS_KEY`/`HW_SECRET_KEY`/`HW_SECURITY_TOKEN` family).
    pub fn from_env() -> Result<Self, CloudError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Credentials::from_env`] with an injectable variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CloudError> {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()))
        };
        let ak = first(ENV_ACCESS_KEY);
        let sk = first(ENV_SECRET_KEY);
        match (ak, sk) {
            (Some(ak), Some(sk)) => {
                let mut c = Credentials::new(ak.trim(), sk.trim());
                if let Some(t) = first(ENV_SECURITY_TOKEN) {
                    c = c.with_security_token(t.trim());
                }
                Ok(c)
            }
            (ak, _) => Err(CloudError::local(
                ErrorKind::Unauthorized,
                "credentials",
                format!(
                    "missing {} in the environment (set {} and {})",
                    if ak.is_none() {
                        "access key"
                    } else {
                        "secret key"
                    },
                    ENV_ACCESS_KEY[0],
                    ENV_SECRET_KEY[0]
                ),
            )),
        }
    }

    /// The access key id (not secret).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key. Only the signer should call this.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The STS token, if these are temporary credentials.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_key_pair(
            f,
            "Credentials",
            &self.access_key,
            self.security_token.as_deref(),
        )
    }
}

/// The `Debug` output of a type `name` holding an AK/SK pair: the access key (not
/// secret) as it is, the secret key and the security token (if any) as `<redacted>`.
/// The emulator's accepted keys print the same way.
pub fn debug_key_pair(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    access_key: &str,
    security_token: Option<&str>,
) -> fmt::Result {
    f.debug_struct(name)
        .field("access_key", &access_key)
        .field("secret_key", &"<redacted>")
        .field("security_token", &security_token.map(|_| "<redacted>"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret_or_token() {
        let c = Credentials::new("AKID", "very-secret-key").with_security_token("sts-token-value");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret-key"));
        assert!(!shown.contains("sts-token-value"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn env_lookup_prefers_sdk_names_and_falls_back_to_hw_names() {
        let c = Credentials::from_lookup(|n| match n {
            "HW_ACCESS_KEY" => Some("ak2".into()),
            "HW_SECRET_KEY" => Some("sk2".into()),
            "HUAWEICLOUD_SDK_AK" => Some("ak1".into()),
            "HUAWEICLOUD_SDK_SECURITY_TOKEN" => Some("tok".into()),
            _ => None,
        })
        .expect("credentials");
        assert_eq!(c.access_key(), "ak1");
        assert_eq!(c.secret_key(), "sk2");
        assert_eq!(c.security_token(), Some("tok"));
    }

    #[test]
    fn missing_secret_key_is_an_error_naming_the_variable() {
        let err = Credentials::from_lookup(|n| (n == "HUAWEICLOUD_SDK_AK").then(|| "ak".into()))
            .expect_err("no sk");
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(err.message.contains("secret key"));
        assert!(err.message.contains("HUAWEICLOUD_SDK_SK"));
    }
}
