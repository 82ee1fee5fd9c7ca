//! `X-Dialer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! The key is the whole secret string as the tenant received it (`whsec_…` included); the
//! signed text is the timestamp, a dot and the raw body bytes, so a receiver verifies before
//! it parses anything, and a captured request replayed later fails the timestamp check.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header value for `body` signed at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the timestamp is {0} s away from now (more than the tolerance)")]
    Stale(i64),
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks a header as a receiver would: well formed, `t` within `tolerance_secs` of `now`,
/// and one of its `v1` values (several may be sent during a rotation) equal, in constant
/// time, to the HMAC of `"<t>.<body>"`.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew = (now - t).abs();
    if skew > tolerance_secs {
        return Err(SignatureError::Stale(skew));
    }
    let expected = mac(secret, t, body);
    if sigs.iter().any(|s| bool::from(s.ct_eq(&expected))) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn signature_matches_an_independent_computation() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //   b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(SECRET, 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn a_signature_verifies_with_its_secret_and_body_only() {
        let body = br#"{"event":"call.finished"}"#;
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(SECRET, &header, body, 1_000, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, body, 1_299, 300), Ok(()));
        assert_eq!(
            verify("whsec_other", &header, body, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &header, br#"{"event":"lead.final"}"#, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_old_or_malformed_header_is_refused() {
        let body = b"{}";
        let header = sign(SECRET, 1_000, body);
        assert_eq!(
            verify(SECRET, &header, body, 1_301, 300),
            Err(SignatureError::Stale(301))
        );
        for bad in [
            "",
            "t=1000",
            "v1=00",
            "t=x,v1=00",
            "t=1000,v1=zz",
            "garbage",
        ] {
            assert_eq!(
                verify(SECRET, bad, body, 1_000, 300),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        let body = b"{}";
        let good = sign(SECRET, 1_000, body);
        let v1 = good.split_once("v1=").unwrap().1;
        let header = format!("t=1000,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(verify(SECRET, &header, body, 1_000, 300), Ok(()));
    }
}
