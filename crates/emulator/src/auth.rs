//! Verification of `SDK-HMAC-SHA256` signatures, driven by the request's own
//! `SignedHeaders` list (so the Go SDK, Python SDK, golangsdk and our client all pass).

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDateTime, Utc};
use flexus_cloud::signer;

use crate::config::AcceptedKey;
use crate::error::ApiError;

fn denied(reason: &str) -> ApiError {
    ApiError::gateway(
        StatusCode::UNAUTHORIZED,
        "APIGW.0301",
        format!("Incorrect IAM authentication information: {reason}"),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks one request. `path` and `raw_query` are as received (still percent-encoded).
#[allow(clippy::too_many_arguments)]
pub fn verify(
    keys: &[AcceptedKey],
    method: &str,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now_real: DateTime<Utc>,
    max_skew_s: i64,
) -> Result<(), ApiError> {
    if headers.contains_key("x-auth-token") && !headers.contains_key("authorization") {
        return Err(denied(
            "token authentication is not supported here, sign with AK/SK",
        ));
    }
    let auth = header(headers, "authorization")
        .ok_or_else(|| denied("Authorization header is missing"))?;
    let parsed = signer::parse_authorization(auth).ok_or_else(|| {
        denied("unsupported or malformed Authorization header (expected SDK-HMAC-SHA256)")
    })?;
    if !parsed.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(denied("x-sdk-date must be a signed header"));
    }
    let date_str =
        header(headers, "x-sdk-date").ok_or_else(|| denied("X-Sdk-Date header is missing"))?;
    let date = NaiveDateTime::parse_from_str(date_str, signer::SDK_DATE_FORMAT)
        .map_err(|_| denied("X-Sdk-Date is not in YYYYMMDDTHHMMSSZ form"))?
        .and_utc();
    let key = keys
        .iter()
        .find(|k| k.access_key == parsed.access)
        .ok_or_else(|| denied("verify aksk signature fail"))?;
    let mut signed = Vec::with_capacity(parsed.signed_headers.len());
    for name in &parsed.signed_headers {
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(denied(&format!(
                "signed header {name} is missing from the request"
            )));
        }
        for v in values {
            signed.push((name.clone(), v.to_string()));
        }
    }
    let token = header(headers, signer::HEADER_SECURITY_TOKEN);
    match (&key.security_token, token) {
        (Some(expected), Some(got)) => {
            if !constant_time_eq(expected, got)
                || !parsed
                    .signed_headers
                    .iter()
                    .any(|h| h == "x-security-token")
            {
                return Err(denied("verify aksk signature fail"));
            }
        }
        (Some(_), None) => return Err(denied("temporary credentials need X-Security-Token")),
        (None, Some(_)) => return Err(denied("verify aksk signature fail")),
        (None, None) => {}
    }
    let payload_hash = match header(headers, "x-sdk-content-sha256") {
        Some(v) => v.to_string(),
        None => signer::sha256_hex(body),
    };
    let decoded_path = path
        .split('/')
        .map(signer::decode)
        .collect::<Vec<_>>()
        .join("/");
    let query = raw_query.map(signer::parse_raw_query).unwrap_or_default();
    let canonical = signer::canonical_request(&signer::SignableRequest {
        method,
        path: &decoded_path,
        query: &query,
        headers: &signed,
        payload_hash: &payload_hash,
    });
    let expected = signer::signature(
        &key.secret_key,
        &signer::string_to_sign(&canonical, date_str),
    );
    if !constant_time_eq(&expected, &parsed.signature) {
        return Err(denied("verify aksk signature fail"));
    }
    if (now_real - date).num_seconds().abs() > max_skew_s {
        return Err(ApiError::gateway(
            StatusCode::UNAUTHORIZED,
            "APIGW.0303",
            "Incorrect app authentication information: the request time X-Sdk-Date differs from the server time by more than 15 minutes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key() -> Vec<AcceptedKey> {
        vec![AcceptedKey::new("AccessKey", "SecretKey")]
    }

    fn go_sdk_vector_a() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-sdk-date", HeaderValue::from_static("20060102T150405Z"));
        h.insert("test_underscore", HeaderValue::from_static("TEST_VALUE"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
                 Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
            ),
        );
        h
    }

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, signer::SDK_DATE_FORMAT)
            .expect("date")
            .and_utc()
    }

    /// Verifies a `GET /path?{query}` with no body, signed by `headers`, against `keys`
    /// as the emulator would at `now` with a 15 minute skew limit.
    fn verify_get_path(
        keys: &[AcceptedKey],
        headers: &HeaderMap,
        query: &str,
        now: &str,
    ) -> Result<(), ApiError> {
        verify(
            keys,
            "GET",
            "/path",
            Some(query),
            headers,
            b"",
            at(now),
            900,
        )
    }

    /// Verifies the Go SDK's signed `GET /path?{query}` (vector A) as the emulator would at `now`.
    fn verify_vector_a(query: &str, now: &str) -> Result<(), ApiError> {
        verify_get_path(&key(), &go_sdk_vector_a(), query, now)
    }

    #[test]
    fn go_sdk_signature_verifies_from_its_signed_header_list() {
        verify_vector_a("limit=1", "20060102T150405Z").expect("valid");
    }

    #[test]
    fn changed_query_is_rejected_with_apigw_0301() {
        let e = verify_vector_a("limit=2", "20060102T150405Z").expect_err("tampered");
        assert_eq!(e.code, "APIGW.0301");
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn date_sixteen_minutes_off_is_rejected_with_apigw_0303() {
        let e = verify_vector_a("limit=1", "20060102T152105Z").expect_err("skew");
        assert_eq!(e.code, "APIGW.0303");
        verify_vector_a("limit=1", "20060102T151905Z").expect("14 minutes is fine");
    }

    #[test]
    fn signing_guide_example_with_host_and_content_type_verifies() {
        let keys = vec![AcceptedKey::new(
            "QTWAOYTTINDUT2QVKYUC",
            "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
        )];
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert(
            "host",
            HeaderValue::from_static("service.region.example.com"),
        );
        h.insert("x-sdk-date", HeaderValue::from_static("20191115T033655Z"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, \
                 Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
            ),
        );
        verify(
            &keys,
            "GET",
            "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            Some("limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"),
            &h,
            b"",
            at("20191115T033655Z"),
            900,
        )
        .expect("valid");
    }

    #[test]
    fn unknown_access_key_and_other_algorithms_are_rejected() {
        let mut h = go_sdk_vector_a();
        let e = verify_get_path(&[], &h, "limit=1", "20060102T150405Z").expect_err("no key");
        assert_eq!(e.code, "APIGW.0301");
        h.insert(
            "authorization",
            HeaderValue::from_static("V11-HMAC-SHA256 Credential=AK/x"),
        );
        let e = verify_get_path(&key(), &h, "limit=1", "20060102T150405Z").expect_err("algorithm");
        assert!(e.message.contains("SDK-HMAC-SHA256"));
    }
}
