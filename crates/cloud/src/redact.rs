//! Credentials written into URLs never reach a message or a log line.
//!
//! [`redact_url`] is the one helper for it: the cloud client uses it for its endpoint,
//! and the agent for every URL it may print (Prometheus, Redis, the store, the cloud
//! endpoint, the advisor). It works on text, not on a parsed URL, because the URLs
//! that most need it are the ones that do not parse (`check-config` on a wrong scheme).

/// What stands in for a removed secret.
pub const HIDDEN: &str = "***";

/// `url` with its user information (`user:password@`) and the values of secret query
/// parameters (`password`, `sslpassword`, `token`, `secret`, `key`, ...) replaced by
/// [`HIDDEN`]. When in doubt it hides more: everything up to the last `@` is taken as
/// user information, whatever the URL's scheme or shape.
pub fn redact_url(url: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = match url[authority..].rfind('@') {
        Some(at) => (
            format!("{}{HIDDEN}", &url[..authority]),
            &url[authority + at..],
        ),
        None => (String::new(), url),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut out = head + before_query;
    if let Some(q) = query {
        let (q, fragment) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}={HIDDEN}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

/// A query parameter whose value is a secret.
fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "sig",
        "credential",
        "auth",
    ]
    .iter()
    .any(|s| n.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn user_information_and_secret_parameters_are_hidden_in_any_url() {
        for (url, shown) in [
            ("http://prom:9090", "http://prom:9090"),
            (
                "http://admin:hunter2@prom:9090/api",
                "http://***@prom:9090/api",
            ),
            ("redis://:hunter2@cache:6379/0", "redis://***@cache:6379/0"),
            (
                "rediss://default:hunter2@cache:6380",
                "rediss://***@cache:6380",
            ),
            (
                "postgres://flexus:hunter2@db:5432/agent?sslmode=require",
                "postgres://***@db:5432/agent?sslmode=require",
            ),
            (
                "postgresql:///agent?host=/run/pg&password=hunter2&sslpassword=hunter2",
                "postgresql:///agent?host=/run/pg&password=***&sslpassword=***",
            ),
            // Invalid URLs are where it matters most: no scheme, a wrong scheme, a
            // password holding '@', '/', '?' or '#'.
            ("ftp://u:hunter2@prom:9090", "ftp://***@prom:9090"),
            ("http//u:hunter2@prom:9090", "***@prom:9090"),
            ("u:hunter2@prom:9090", "***@prom:9090"),
            ("http://u:hun@ter2@prom", "http://***@prom"),
            ("http://u:hun/ter2@prom/x", "http://***@prom/x"),
            ("http://u:hun?ter2@prom", "http://***@prom"),
            ("http://u:hun#ter2@prom", "http://***@prom"),
            (
                "https://api.example/v1?api_key=hunter2&model=x#top",
                "https://api.example/v1?api_key=***&model=x#top",
            ),
            ("unix:///run/redis.sock", "unix:///run/redis.sock"),
            ("", ""),
        ] {
            let got = redact_url(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("hunter2") && !got.contains("ter2"), "{url}");
        }
    }
}
