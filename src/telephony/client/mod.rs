//! A small typed client for Twilio's 2010-04-01 REST API: place and steer calls, and
//! manage conference participants. Written over reqwest because the published Twilio
//! crates are broken or stale.
//!
//! The base URL is configuration, so any Twilio-compatible carrier (or the simulator)
//! works. Requests are form-encoded exactly as Twilio expects (see [`model`]).
//!
//! Retries: only where a repeat cannot dial twice. That is HTTP 429 / error 20429 (Twilio
//! refused the request before acting on it) and connection errors before the request was
//! sent. A timeout after sending, or any other 4xx/5xx, is returned to the caller at once:
//! the carrier may have acted on it.

mod model;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::TwilioSettings;
use crate::telephony::{CallSid, is_sid};

pub use model::{
    AddParticipant, Beep, CallEvent, CallResource, ConferenceCallbackEvent, ConferenceResource,
    ConferenceStatus, CreateCall, EndCall, HttpMethod, Instructions, MachineDetection,
    ParticipantResource, ParticipantStatus, RecordingEvent, UpdateCall, UpdateConference,
    UpdateParticipant,
};
use model::{CallPage, ErrorBody, FormPairs};

/// Twilio's error code for "too many requests", safe to retry.
const RATE_LIMIT_CODE: u32 = 20429;

/// The API version segment every path starts with.
const API_VERSION: &str = "2010-04-01";

/// How often and how patiently to retry the requests that are safe to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (0 is read as 1).
    pub max_attempts: u32,
    /// Backoff before the second try; it doubles for each later one.
    pub base_delay: Duration,
    /// Cap on one backoff. A `Retry-After` longer than this is not waited out: the
    /// `RateLimited` error goes back to the caller, who can reschedule the work.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Backoff after failed try number `attempt` (1-based): exponential, capped, with
    /// "equal jitter" (uniform in [d/2, d]) so instances that failed together spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = full / 2;
        let jitter_nanos = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos))
    }
}

/// Why a request to the carrier failed. Callers branch on it: [`TwilioError::is_retryable`]
/// says whether the same request may be sent again without risk of acting twice.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// HTTP 429 / error 20429: the carrier did not act on the request.
    #[error("rate limited by the carrier (retry after {retry_after:?})")]
    RateLimited {
        /// The carrier's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The carrier answered with an error (4xx/5xx other than 429).
    #[error("carrier error: HTTP {status}, code {code:?}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio error code (`21211` invalid To, `20404` not found …), when the body had one.
        code: Option<u32>,
        /// Twilio's message, or the start of a non-JSON body.
        message: String,
    },
    /// No usable answer. `sent: false` means the request never left (connection refused,
    /// DNS, TLS); `sent: true` means it may have reached the carrier (timeout, reset).
    #[error("transport error (request {}): {message}", if *.sent { "may have been sent" } else { "not sent" })]
    Transport {
        /// The transport error and its causes.
        message: String,
        /// Whether the request may have reached the carrier.
        sent: bool,
    },
    /// A 2xx answer whose body is not the resource we asked for.
    #[error("could not decode the carrier's response: {0}")]
    Decode(String),
}

impl TwilioError {
    /// True when sending the same request again cannot make the carrier act twice.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TwilioError::RateLimited { .. } | TwilioError::Transport { sent: false, .. }
        )
    }
}

/// The client cannot be built from this configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// `twilio.account_sid` is empty.
    #[error("twilio.account_sid is not set")]
    MissingAccountSid,
    /// `twilio.account_sid` is not `AC` + 32 hex digits.
    #[error("twilio.account_sid is not an account SID (AC + 32 hex digits): {0:?}")]
    InvalidAccountSid(String),
    /// No (or an empty) auth token.
    #[error(
        "twilio.auth_token is not set (DIALER__TWILIO__AUTH_TOKEN or systemd credential twilio.auth_token)"
    )]
    MissingAuthToken,
    /// `twilio.api_base_url` is not an http(s) URL without query or fragment.
    #[error("twilio.api_base_url is not an http(s) base URL: {0:?}")]
    InvalidBaseUrl(String),
    /// reqwest could not build a client (TLS backend setup).
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Typed Twilio REST client. Cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct TwilioClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    account_sid: String,
    auth_token: SecretString,
    /// `{base}/2010-04-01/Accounts/{AccountSid}`, the prefix of every path.
    account_url: Url,
    retry: RetryPolicy,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("account_sid", &self.inner.account_sid)
            .field("account_url", &self.inner.account_url.as_str())
            .field("auth_token", &"[redacted]")
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl TwilioClient {
    /// A client for `account_sid` at `api_base_url` (`https://api.twilio.com`, or any
    /// Twilio-compatible carrier). `timeout` bounds each try, connection included.
    pub fn new(
        account_sid: String,
        auth_token: SecretString,
        api_base_url: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ClientConfigError> {
        if account_sid.is_empty() {
            return Err(ClientConfigError::MissingAccountSid);
        }
        if !is_sid(&account_sid, "AC") {
            return Err(ClientConfigError::InvalidAccountSid(account_sid));
        }
        if auth_token.expose_secret().is_empty() {
            return Err(ClientConfigError::MissingAuthToken);
        }
        let bad_url = || ClientConfigError::InvalidBaseUrl(api_base_url.to_string());
        let mut account_url = Url::parse(api_base_url).map_err(|_| bad_url())?;
        if !matches!(account_url.scheme(), "http" | "https")
            || account_url.query().is_some()
            || account_url.fragment().is_some()
        {
            return Err(bad_url());
        }
        account_url
            .path_segments_mut()
            .map_err(|()| bad_url())?
            .pop_if_empty()
            .extend([API_VERSION, "Accounts", account_sid.as_str()]);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("dialer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                account_sid,
                auth_token,
                account_url,
                retry,
            }),
        })
    }

    /// The client the daemon configures: `[twilio]` settings, default retry policy.
    pub fn from_settings(settings: &TwilioSettings) -> Result<Self, ClientConfigError> {
        let token = settings
            .auth_token
            .clone()
            .ok_or(ClientConfigError::MissingAuthToken)?;
        Self::new(
            settings.account_sid.clone(),
            token,
            &settings.api_base_url,
            Duration::from_secs(settings.request_timeout_secs.max(1)),
            RetryPolicy::default(),
        )
    }

    /// The account this client acts for.
    pub fn account_sid(&self) -> &str {
        &self.inner.account_sid
    }

    /// Places an outbound call (`POST /Calls.json`).
    #[tracing::instrument(name = "twilio.create_call", skip_all, fields(call.sid = tracing::field::Empty))]
    pub async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        let url = self.url(&["Calls.json"]);
        let body = self.execute(Method::POST, url, Some(&call.form())).await?;
        let resource: CallResource = decode(&body)?;
        tracing::Span::current().record("call.sid", resource.sid.as_str());
        Ok(resource)
    }

    /// The call as the carrier sees it now (`GET /Calls/{Sid}.json`).
    #[tracing::instrument(name = "twilio.fetch_call", skip_all, fields(call.sid = %sid))]
    pub async fn fetch_call(&self, sid: &CallSid) -> Result<CallResource, TwilioError> {
        let url = self.url(&["Calls", &format!("{sid}.json")]);
        let body = self.execute(Method::GET, url, None).await?;
        decode(&body)
    }

    /// The newest calls to `to` (and from `from`, when given), newest first: the first
    /// page of `GET /Calls.json?To=…` (at most `page_size`, which Twilio caps at 1,000).
    /// Used to find a call whose creation response was lost.
    #[tracing::instrument(name = "twilio.list_calls", skip_all)]
    pub async fn list_calls(
        &self,
        to: &str,
        from: Option<&str>,
        page_size: u32,
    ) -> Result<Vec<CallResource>, TwilioError> {
        let mut url = self.url(&["Calls.json"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("To", to);
            if let Some(from) = from {
                query.append_pair("From", from);
            }
            query.append_pair("PageSize", &page_size.clamp(1, 1000).to_string());
        }
        let body = self.execute(Method::GET, url, None).await?;
        let page: CallPage = decode(&body)?;
        Ok(page.calls)
    }

    /// Redirects, cancels or hangs up a call (`POST /Calls/{Sid}.json`).
    #[tracing::instrument(name = "twilio.update_call", skip_all, fields(call.sid = %sid))]
    pub async fn update_call(
        &self,
        sid: &CallSid,
        update: &UpdateCall,
    ) -> Result<CallResource, TwilioError> {
        let url = self.url(&["Calls", &format!("{sid}.json")]);
        let body = self
            .execute(Method::POST, url, Some(&update.form()))
            .await?;
        decode(&body)
    }

    /// Dials a participant into `conference`, which may be the conference's friendly
    /// name: Twilio creates the conference on first use
    /// (`POST /Conferences/{name}/Participants.json`).
    #[tracing::instrument(
        name = "twilio.add_participant",
        skip_all,
        fields(conference = %conference, call.sid = tracing::field::Empty)
    )]
    pub async fn add_participant(
        &self,
        conference: &str,
        participant: &AddParticipant,
    ) -> Result<ParticipantResource, TwilioError> {
        let url = self.url(&["Conferences", conference, "Participants.json"]);
        let body = self
            .execute(Method::POST, url, Some(&participant.form()))
            .await?;
        let resource: ParticipantResource = decode(&body)?;
        tracing::Span::current().record("call.sid", resource.call_sid.as_str());
        Ok(resource)
    }

    /// Holds, mutes, coaches or announces to one participant, named by call SID or label
    /// (`POST /Conferences/{Sid}/Participants/{CallSid}.json`). Twilio's spec documents
    /// only a conference SID (`CF…`) here, not the friendly name `add_participant` takes.
    #[tracing::instrument(
        name = "twilio.update_participant",
        skip_all,
        fields(conference = %conference, participant = %participant)
    )]
    pub async fn update_participant(
        &self,
        conference: &str,
        participant: &str,
        update: &UpdateParticipant,
    ) -> Result<ParticipantResource, TwilioError> {
        let url = self.participant_url(conference, participant);
        let body = self
            .execute(Method::POST, url, Some(&update.form()))
            .await?;
        decode(&body)
    }

    /// Hangs up one participant's leg (`DELETE …/Participants/{CallSid}.json`, 204).
    /// Same addressing as [`TwilioClient::update_participant`].
    #[tracing::instrument(
        name = "twilio.remove_participant",
        skip_all,
        fields(conference = %conference, participant = %participant)
    )]
    pub async fn remove_participant(
        &self,
        conference: &str,
        participant: &str,
    ) -> Result<(), TwilioError> {
        let url = self.participant_url(conference, participant);
        self.execute(Method::DELETE, url, None).await?;
        Ok(())
    }

    /// Ends a conference or announces to all of it (`POST /Conferences/{Sid}.json`).
    #[tracing::instrument(name = "twilio.update_conference", skip_all, fields(conference = %conference_sid))]
    pub async fn update_conference(
        &self,
        conference_sid: &str,
        update: &UpdateConference,
    ) -> Result<ConferenceResource, TwilioError> {
        let url = self.url(&["Conferences", &format!("{conference_sid}.json")]);
        let body = self
            .execute(Method::POST, url, Some(&update.form()))
            .await?;
        decode(&body)
    }

    fn participant_url(&self, conference: &str, participant: &str) -> Url {
        self.url(&[
            "Conferences",
            conference,
            "Participants",
            &format!("{participant}.json"),
        ])
    }

    /// The account URL plus `segments`, each percent-encoded as one path segment (so a
    /// friendly name with `/` or spaces stays one segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.account_url.clone();
        // The account URL was checked to be an http(s) URL in `new`, and those can always
        // be a base, so `path_segments_mut` cannot fail here.
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// Sends the request, retrying only what [`TwilioError::is_retryable`] allows.
    async fn execute(
        &self,
        method: Method,
        url: Url,
        form: Option<&FormPairs>,
    ) -> Result<Vec<u8>, TwilioError> {
        let retry = &self.inner.retry;
        let max_attempts = retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match self.try_once(method.clone(), url.clone(), form).await {
                Ok(body) => return Ok(body),
                Err(err) if err.is_retryable() && attempt < max_attempts => err,
                Err(err) => return Err(err),
            };
            let mut delay = retry.backoff(attempt);
            if let TwilioError::RateLimited {
                retry_after: Some(after),
            } = &err
            {
                if *after > retry.max_delay {
                    return Err(err);
                }
                delay = delay.max(*after);
            }
            tracing::warn!(
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %err,
                "twilio request not accepted; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn try_once(
        &self,
        method: Method,
        url: Url,
        form: Option<&FormPairs>,
    ) -> Result<Vec<u8>, TwilioError> {
        let mut request = self.inner.http.request(method, url).basic_auth(
            &self.inner.account_sid,
            Some(self.inner.auth_token.expose_secret()),
        );
        if let Some(pairs) = form {
            request = request.form(pairs);
        }
        let response = request.send().await.map_err(api_error_counted)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(api_error_counted)?;
        tracing::debug!(http.status = status.as_u16(), "twilio response");
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let code = parsed.as_ref().and_then(|b| b.code);
        metrics::counter!(
            "dialer_twilio_api_errors_total",
            "status" => status.as_u16().to_string(),
            "code" => code.map_or_else(|| "none".to_string(), |c| c.to_string())
        )
        .increment(1);
        if status == StatusCode::TOO_MANY_REQUESTS || code == Some(RATE_LIMIT_CODE) {
            return Err(TwilioError::RateLimited { retry_after });
        }
        let message = parsed
            .and_then(|b| b.message)
            .unwrap_or_else(|| fallback_message(status, &body));
        Err(TwilioError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TwilioError> {
    serde_json::from_slice(body).map_err(|e| TwilioError::Decode(e.to_string()))
}

/// A transport error, counted in `dialer_twilio_api_errors_total` as status `transport`.
fn api_error_counted(err: reqwest::Error) -> TwilioError {
    metrics::counter!("dialer_twilio_api_errors_total", "status" => "transport", "code" => "none")
        .increment(1);
    transport_error(err)
}

/// Only a connection that was never made proves the carrier did not see the request.
fn transport_error(err: reqwest::Error) -> TwilioError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    TwilioError::Transport {
        message,
        sent: !err.is_connect(),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// An error body that is not Twilio JSON (a proxy's HTML page…): its start, or the reason.
fn fallback_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.chars().take(200).collect()
    }
}
