//! Signed callbacks from the simulator to the daemon, in order per call, optionally
//! duplicated or reordered on request (to test idempotency).

use std::sync::Arc;

use rand::Rng;
use tokio::sync::mpsc;

use super::Shared;
use super::journal::Event;
use crate::telephony::signature;

/// One callback to deliver.
#[derive(Debug, Clone)]
pub struct Callback {
    pub call_sid: String,
    /// status, amd, conference, recording …
    pub kind: &'static str,
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
}

/// A per-call (or per-conference) ordered delivery queue.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Callback>,
}

impl Sender {
    pub fn spawn(shared: Arc<Shared>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Callback>();
        tokio::spawn(async move {
            let mut held: Option<Callback> = None;
            while let Some(cb) = rx.recv().await {
                let (dup, reorder) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_bool(shared.config.duplicate_callbacks.clamp(0.0, 1.0)),
                        rng.random_bool(shared.config.reorder_callbacks.clamp(0.0, 1.0)),
                    )
                };
                if reorder && held.is_none() {
                    held = Some(cb);
                    continue;
                }
                deliver(&shared, &cb, false).await;
                if dup {
                    deliver(&shared, &cb, true).await;
                }
                if let Some(h) = held.take() {
                    deliver(&shared, &h, false).await;
                }
            }
            if let Some(h) = held.take() {
                deliver(&shared, &h, false).await;
            }
        });
        Self { tx }
    }

    pub fn send(&self, cb: Callback) {
        // The receiver lives as long as any sender; a send fails only after shutdown.
        let _ = self.tx.send(cb);
    }
}

/// Sends one callback signed as Twilio signs it; the journal records the answer.
pub async fn deliver(shared: &Shared, cb: &Callback, duplicate: bool) -> Option<u16> {
    let token = shared.config.auth_token.as_bytes();
    let request = if cb.method.eq_ignore_ascii_case("GET") {
        let url = with_query(&cb.url, &cb.params);
        let sig = signature::compute(token, &url, &[] as &[(&str, &str)]);
        shared.http.get(&url).header("X-Twilio-Signature", sig)
    } else {
        let sig = signature::compute(token, &cb.url, &cb.params);
        shared
            .http
            .post(&cb.url)
            .header("X-Twilio-Signature", sig)
            .form(&cb.params)
    };
    let request = request.header("User-Agent", "TwilioProxy/1.1");
    let sent = std::time::Instant::now();
    let (status, latency_ms) = match request.send().await {
        Ok(r) => (
            Some(r.status().as_u16()),
            Some(sent.elapsed().as_secs_f64() * 1000.0),
        ),
        Err(e) => {
            tracing::debug!(error = %e, url = %cb.url, "callback failed");
            (None, None)
        }
    };
    shared.journal.record(Event::Callback {
        call_sid: cb.call_sid.clone(),
        kind: cb.kind.to_string(),
        url: cb.url.clone(),
        http_status: status,
        duplicate,
        latency_ms,
        sent_ms: Some(shared.journal.ms_at(sent)),
    });
    status
}

/// `url` with `params` appended to its query string (for GET callbacks and fetches).
pub fn with_query(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_string();
    }
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{encoded}")
}
