//! X-Twilio-Signature: `base64(HMAC-SHA1(auth_token, url + Σ sorted(key + value)))`.
//!
//! Mirrors Twilio's official validators (`twilio` on PyPI, `RequestValidator`): parameter
//! names sorted, the distinct values of a repeated name sorted, the URL tried both with the
//! scheme's default port added and with any port removed (Twilio's edge signs either form),
//! constant-time comparison, and for JSON bodies a `bodySHA256` query parameter that must
//! equal the hex SHA-256 of the raw body while only the URL is signed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio would send for a form-encoded request to `url` with `params`.
pub fn compute<K: AsRef<str>, V: AsRef<str>>(token: &[u8], url: &str, params: &[(K, V)]) -> String {
    let mut mac = HmacSha1::new_from_slice(token).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    // Sorting the (name, value) pairs sorts names, then each name's values; equal pairs are
    // one pair, as Python's `sorted(set(values))` makes them.
    pairs.sort_unstable();
    pairs.dedup();
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Is `signature` Twilio's for a form-encoded request to `url` carrying `params`?
pub fn validate<K: AsRef<str>, V: AsRef<str>>(
    token: &[u8],
    url: &str,
    params: &[(K, V)],
    signature: &str,
) -> bool {
    let sig = signature.as_bytes();
    // Both variants are always computed so timing does not tell which one matched.
    let with = compare(
        compute(token, &with_default_port(url), params).as_bytes(),
        sig,
    );
    let without = compare(compute(token, &without_port(url), params).as_bytes(), sig);
    with | without
}

/// Is `signature` Twilio's for a JSON (or any non-form) request? The URL must carry
/// `bodySHA256` equal to the body's hex SHA-256, and the URL alone is signed.
pub fn validate_body(token: &[u8], url: &str, body: &[u8], signature: &str) -> bool {
    let Some(expected) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex::encode(Sha256::digest(body));
    let body_ok = compare(actual.as_bytes(), expected.as_bytes());
    let no_params: &[(&str, &str)] = &[];
    body_ok & validate(token, url, no_params, signature)
}

/// The hex SHA-256 of a body, for signing JSON requests (the simulator's side).
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn compare(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Splits `scheme://authority/rest` into (scheme, authority, rest) without normalising
/// anything else: the signed string must stay byte for byte what the carrier used.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((scheme, &after[..end], &after[end..]))
}

/// Host part and explicit port (if any) of an authority, IPv6 literals included.
fn host_port(authority: &str) -> (&str, Option<&str>) {
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let hostport = &authority[host_start..];
    match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => {
            (&authority[..host_start + i], Some(&hostport[i + 1..]))
        }
        _ => (authority, None),
    }
}

/// The URL with the scheme's default port written out (unchanged if a port is present).
pub fn with_default_port(url: &str) -> String {
    let Some((scheme, authority, rest)) = split(url) else {
        return url.to_string();
    };
    match host_port(authority) {
        (_, Some(_)) => url.to_string(),
        (host, None) => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{host}:{port}{rest}")
        }
    }
}

/// The URL with any port removed.
pub fn without_port(url: &str) -> String {
    let Some((scheme, authority, rest)) = split(url) else {
        return url.to_string();
    };
    match host_port(authority) {
        (host, Some(_)) => format!("{scheme}://{host}{rest}"),
        (_, None) => url.to_string(),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn vector_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
    }

    #[test]
    fn twilio_published_test_vector_passes() {
        assert_eq!(
            compute(TOKEN, URL, &vector_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate(
            TOKEN,
            URL,
            &vector_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn parameter_order_does_not_matter_but_values_do() {
        let mut shuffled = vector_params();
        shuffled.reverse();
        assert!(validate(
            TOKEN,
            URL,
            &shuffled,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut changed = vector_params();
        changed[2].1 = "1235";
        assert!(!validate(
            TOKEN,
            URL,
            &changed,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn another_token_or_url_is_rejected() {
        assert!(!validate(
            b"54321",
            URL,
            &vector_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let other = "https://mycompany.com/myapp.php?foo=1&bar=3";
        assert!(!validate(
            TOKEN,
            other,
            &vector_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate(TOKEN, URL, &vector_params(), ""));
    }

    #[test]
    fn url_is_tried_with_and_without_the_default_port() {
        let sig_with_port = compute(
            TOKEN,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &vector_params(),
        );
        assert!(validate(TOKEN, URL, &vector_params(), &sig_with_port));
        let sig_without = compute(TOKEN, URL, &vector_params());
        assert!(validate(
            TOKEN,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &vector_params(),
            &sig_without
        ));
        assert_eq!(with_default_port("http://h/x"), "http://h:80/x");
        assert_eq!(with_default_port("http://h:8080/x"), "http://h:8080/x");
        assert_eq!(without_port("http://h:8080/x?a=1"), "http://h/x?a=1");
        assert_eq!(without_port("http://[::1]/x"), "http://[::1]/x");
        assert_eq!(with_default_port("https://[::1]?q"), "https://[::1]:443?q");
    }

    #[test]
    fn repeated_keys_are_sorted_by_value() {
        let a = [
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
        ];
        let b = [
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "ringing"),
        ];
        assert_eq!(compute(TOKEN, URL, &a), compute(TOKEN, URL, &b));
        let expected = compute(
            TOKEN,
            &format!("{URL}StatusCallbackEventansweredStatusCallbackEventringing"),
            &[] as &[(&str, &str)],
        );
        assert_eq!(compute(TOKEN, URL, &a), expected);
    }

    #[test]
    fn json_bodies_are_checked_by_their_hash() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={}",
            body_sha256(body)
        );
        let sig = compute(TOKEN, &url, &[] as &[(&str, &str)]);
        assert!(validate_body(TOKEN, &url, body, &sig));
        assert!(!validate_body(
            TOKEN,
            &url,
            b"{\"property\": \"other\"}",
            &sig
        ));
        assert!(!validate_body(
            TOKEN,
            URL,
            body,
            &compute(TOKEN, URL, &[] as &[(&str, &str)])
        ));
    }
}
