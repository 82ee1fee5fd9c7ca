//! Outbound event webhooks for tenants' CRMs: `call.finished`, `disposition.set`,
//! `lead.final`, signed with the tenant's secret, retried with backoff, never in the way of
//! dialing.
//!
//! - One endpoint per tenant (`crm_webhooks`), kept by a tenant admin (API, CLI).
//! - [`outbox`]: events are rows of `crm_deliveries`, written in the transaction of the
//!   change they report by one `INSERT … SELECT` that inserts nothing when the tenant has no
//!   enabled endpoint wanting the event; under a savepoint, so a failure there is logged and
//!   never undoes (or stalls) the call flow.
//! - [`deliver`]: a worker on every instance claims due rows (`FOR UPDATE SKIP LOCKED`, a
//!   lease in `next_attempt_at`), POSTs them with a short timeout and bounded concurrency
//!   (overall and per endpoint), and records the outcome or the next attempt.
//! - [`signature`]: `X-Dialer-Signature: t=…,v1=<hex HMAC-SHA256(secret, "t.body")>`.

pub mod deliver;
pub mod outbox;
pub mod repo;
pub mod signature;

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;

/// The events a CRM may subscribe to.
pub const EVENTS: [&str; 3] = ["call.finished", "disposition.set", "lead.final"];

/// Every secret starts with this, so people and secret scanners recognise one.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes (base64url).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A tenant's endpoint as shown to its admins: never the secret, only its first characters.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Endpoint {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// `whsec_` and the first characters, to tell secrets apart.
    pub secret_prefix: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint as given by an admin, checked: an http(s) URL with a host, known events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInput {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
}

/// What is wrong with an endpoint, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl EndpointInput {
    /// `events` None: all of them. `allow_private`: `crm_webhooks.allow_private_targets`.
    pub fn parse(
        url: &str,
        events: Option<&[String]>,
        enabled: Option<bool>,
        allow_private: bool,
    ) -> Result<Self, Invalid> {
        let url = parse_url(url, allow_private)?;
        let events = match events {
            None => EVENTS.iter().map(|e| e.to_string()).collect(),
            Some([]) => {
                return Err(invalid(
                    "events",
                    format!(
                        "events must name at least one of {} (or be left out for all)",
                        EVENTS.join(", ")
                    ),
                ));
            }
            Some(list) => {
                let mut out: Vec<String> = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    let e = e.trim();
                    if !EVENTS.contains(&e) {
                        return Err(invalid(
                            format!("events[{i}]"),
                            format!("unknown event {e:?}: one of {}", EVENTS.join(", ")),
                        ));
                    }
                    if !out.iter().any(|o| o == e) {
                        out.push(e.to_string());
                    }
                }
                out
            }
        };
        Ok(Self {
            url,
            events,
            enabled: enabled.unwrap_or(true),
        })
    }
}

/// An http(s) URL with a host, no fragment, at most 2,048 characters; on a public address
/// unless `allow_private`. Returned as normalised by the URL parser.
pub fn parse_url(raw: &str, allow_private: bool) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid(
            "url",
            "url is required: the CRM's https:// endpoint",
        ));
    }
    if raw.len() > 2048 {
        return Err(invalid("url", "url is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| invalid("url", format!("url is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "url",
            format!("url must be http:// or https://, not {}://", url.scheme()),
        ));
    }
    let Some(host) = url.host() else {
        return Err(invalid("url", "url must have a host"));
    };
    if url.fragment().is_some() {
        return Err(invalid("url", "url must not have a #fragment"));
    }
    if !allow_private {
        let private = match host {
            url::Host::Ipv4(ip) => !is_public(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => !is_public(IpAddr::V6(ip)),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || !d.contains('.')
            }
        };
        if private {
            return Err(invalid(
                "url",
                "url must be on a public address (loopback, private and internal hosts are refused)",
            ));
        }
    }
    Ok(url.to_string())
}

/// True for addresses on the public internet: not loopback, private, link-local (cloud
/// metadata), shared, documentation, multicast, unspecified or broadcast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_needs_an_http_url_with_a_host_and_known_events() {
        let ok = EndpointInput::parse("https://crm.example.com/hooks", None, None, false).unwrap();
        assert_eq!(ok.url, "https://crm.example.com/hooks");
        assert_eq!(ok.events, EVENTS.map(String::from).to_vec());
        assert!(ok.enabled);
        for bad in [
            "",
            "crm.example.com",
            "ftp://crm.example.com/",
            "https://",
            "http:///path",
            "https://crm.example.com/#x",
        ] {
            let e = EndpointInput::parse(bad, None, None, false).unwrap_err();
            assert_eq!(e.field, "url", "{bad:?}: {e}");
        }
        let e = EndpointInput::parse(
            "https://crm.example.com/",
            Some(&["lead.final".into(), "call.started".into()]),
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(e.field, "events[1]");
        let e =
            EndpointInput::parse("https://crm.example.com/", Some(&[]), None, false).unwrap_err();
        assert_eq!(e.field, "events");
        let some = EndpointInput::parse(
            "https://crm.example.com/",
            Some(&["lead.final".into(), "lead.final".into()]),
            Some(false),
            false,
        )
        .unwrap();
        assert_eq!(some.events, ["lead.final"]);
        assert!(!some.enabled);
    }

    #[test]
    fn internal_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://intranet/",
        ] {
            assert!(parse_url(url, false).is_err(), "{url}");
            assert!(parse_url(url, true).is_ok(), "{url}");
        }
        assert!(parse_url("https://93.184.215.14/x", false).is_ok());
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let (a, b) = (generate_secret(), generate_secret());
        assert!(a.starts_with(SECRET_PREFIX) && a.len() > 40);
        assert_ne!(a, b);
    }
}
