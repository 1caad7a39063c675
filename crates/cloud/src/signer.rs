//! The `SDK-HMAC-SHA256` AK/SK request signer used by Huawei Cloud's API gateway.
//!
//! The canonical request is six lines joined by `\n`: method, canonical URI (each path
//! segment percent-encoded, always ending in `/`), canonical query (sorted, encoded),
//! canonical headers (one `name:value\n` line per signed header), the signed header list,
//! and the hex SHA-256 of the body. The string to sign is the algorithm, the `X-Sdk-Date`
//! value and the hex SHA-256 of the canonical request; the signature is HMAC-SHA256 keyed
//! with the raw secret key. There is no key derivation or scoping.
//!
//! The functions here are public so that the emulator verifies with the same definition
//! (the test vectors below pin that definition to Huawei's).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name that opens the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Header carrying the signing time (`YYYYMMDDTHHMMSSZ`).
pub const HEADER_SDK_DATE: &str = "X-Sdk-Date";
/// Header carrying the STS token of temporary credentials.
pub const HEADER_SECURITY_TOKEN: &str = "X-Security-Token";
/// Header that overrides the payload hash.
pub const HEADER_CONTENT_SHA256: &str = "X-Sdk-Content-Sha256";
/// Format of [`HEADER_SDK_DATE`] for `chrono::format`.
pub const SDK_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Hex SHA-256 of the empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Percent-encodes a path segment or a query name/value: unreserved characters
/// (`A-Z a-z 0-9 - _ . ~`) stay, every other byte becomes `%XX` with upper-case hex.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (used by the verifying side on the received path and query).
/// Invalid escapes are kept literally; `+` is kept as `+`.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Canonical URI of a *decoded* path: each segment encoded, result always ends in `/`.
pub fn canonical_uri(path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(encode).collect();
    let mut uri = encoded.join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    if !uri.starts_with('/') {
        uri.insert(0, '/');
    }
    uri
}

/// Canonical query from *decoded* `(name, value)` pairs: sorted by name then value,
/// each encoded, joined with `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Splits a raw (still encoded) query string into decoded pairs.
pub fn parse_raw_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The pieces of a request that the signature covers.
#[derive(Debug, Clone)]
pub struct SignableRequest<'a> {
    /// HTTP method (any case; upper-cased when signing).
    pub method: &'a str,
    /// Decoded URL path, e.g. `/v1/{project}/cloudservers`.
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    /// Headers to sign as `(name, value)`; names in any case.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body, or the `X-Sdk-Content-Sha256` override.
    pub payload_hash: &'a str,
}

/// Lower-cased, byte-wise sorted, de-duplicated names joined with `;`.
pub fn signed_headers(headers: &[(String, String)]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// Builds the canonical request text.
pub fn canonical_request(req: &SignableRequest<'_>) -> String {
    let signed = signed_headers(req.headers);
    let mut canon_headers = String::new();
    for name in signed.split(';').filter(|n| !n.is_empty()) {
        let value = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect::<Vec<_>>()
            .join(",");
        canon_headers.push_str(name);
        canon_headers.push(':');
        canon_headers.push_str(&value);
        canon_headers.push('\n');
    }
    [
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        canon_headers,
        signed,
        req.payload_hash.to_string(),
    ]
    .join("\n")
}

/// `SDK-HMAC-SHA256\n{date}\n{hex sha256(canonical request)}`.
pub fn string_to_sign(canonical_request: &str, sdk_date: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-case hex HMAC-SHA256 of `string_to_sign` keyed with the raw secret key.
pub fn signature(secret_key: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The full `Authorization` header value for a request.
pub fn authorization(access_key: &str, secret_key: &str, req: &SignableRequest<'_>) -> String {
    let date = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(HEADER_SDK_DATE))
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let canonical = canonical_request(req);
    let sts = string_to_sign(&canonical, date);
    format!(
        "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={}",
        signed_headers(req.headers),
        signature(secret_key, &sts)
    )
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The access key.
    pub access: String,
    /// The signed header names, lower case, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..`; `None` if it is
/// another scheme or malformed.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let mut access = None;
    let mut signed = None;
    let mut sig = None;
    for item in rest.split(',') {
        let (k, v) = item.trim().split_once('=')?;
        match k {
            "Access" => access = Some(v.to_string()),
            "SignedHeaders" => {
                signed = Some(v.split(';').map(|s| s.to_ascii_lowercase()).collect())
            }
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(ParsedAuthorization {
        access: access?,
        signed_headers: signed?,
        signature: sig?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn vector_a_get_with_query_signs_only_the_date() {
        let headers = h(&[("X-Sdk-Date", "20060102T150405Z")]);
        let query = h(&[("limit", "1")]);
        let req = SignableRequest {
            method: "GET",
            path: "/path",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY_BODY_SHA256,
        };
        let canonical = canonical_request(&req);
        assert_eq!(
            canonical,
            "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4"
        );
        assert_eq!(
            authorization("AccessKey", "SecretKey", &req),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn vector_b_post_hashes_the_exact_body_bytes() {
        let body = b"{\"Name\":\"test\",\"Id\":1}\n";
        let hash = sha256_hex(body);
        assert_eq!(
            hash,
            "a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289"
        );
        let headers = h(&[("X-Sdk-Date", "20060102T150405Z")]);
        let query = h(&[("key", "value")]);
        let req = SignableRequest {
            method: "POST",
            path: "/path",
            query: &query,
            headers: &headers,
            payload_hash: &hash,
        };
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "13f75ff5f5216199f986c7e7f2f77834d5e160ad9e46f37319816dc72ba7eeab"
        );
        assert!(authorization("AccessKey", "SecretKey", &req).ends_with(
            "SignedHeaders=x-sdk-date, \
             Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
        ));
    }

    #[test]
    fn vector_c_signing_guide_example_signs_content_type_and_host() {
        let headers = h(&[
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ]);
        let query = h(&[
            ("limit", "2"),
            ("marker", "13551d6b-755d-4757-b956-536f674975c0"),
        ]);
        let req = SignableRequest {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY_BODY_SHA256,
        };
        let canonical = canonical_request(&req);
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        assert_eq!(
            authorization(
                "QTWAOYTTINDUT2QVKYUC",
                "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
                &req
            ),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, \
             SignedHeaders=content-type;host;x-sdk-date, \
             Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn vector_d_query_is_sorted_and_strictly_encoded() {
        let query = h(&[
            ("limit", "1"),
            ("enable", "true"),
            ("test", "一 (&=?!#%.*)"),
            ("path", "/tmp/123"),
            ("multi", "3"),
            ("multi", "1"),
            ("multi", "2"),
        ]);
        assert_eq!(
            canonical_query(&query),
            "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&\
             test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
        );
    }

    #[test]
    fn raw_query_round_trips_through_decode_and_encode() {
        let raw = "dim.0=instance_id%2Cabc&from=1&x=a%20b";
        let pairs = parse_raw_query(raw);
        assert_eq!(pairs[0], ("dim.0".into(), "instance_id,abc".into()));
        assert_eq!(
            canonical_query(&pairs),
            "dim.0=instance_id%2Cabc&from=1&x=a%20b"
        );
        // A raw comma canonicalises the same as an encoded one.
        assert_eq!(
            canonical_query(&parse_raw_query("dim.0=instance_id,abc")),
            "dim.0=instance_id%2Cabc"
        );
    }

    #[test]
    fn authorization_header_parses_back() {
        let parsed = parse_authorization(
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=abc",
        )
        .expect("parses");
        assert_eq!(parsed.access, "AK");
        assert_eq!(parsed.signed_headers, vec!["host", "x-sdk-date"]);
        assert_eq!(parsed.signature, "abc");
        assert!(parse_authorization("V11-HMAC-SHA256 Credential=AK/x").is_none());
    }
}
