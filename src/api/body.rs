//! JSON request bodies read into our error shape: a body that does not parse, a field of
//! the wrong type and a field we do not know (bodies `deny_unknown_fields`) each get a 422
//! naming the field, where axum's own `Json` answers in plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON body of type `T`. Any content type is read as JSON (`curl -d` sends a form
/// type by default); keys are bearer tokens, not cookies, so this opens no CSRF hole.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::invalid(
                "invalid_body",
                format!("the body cannot be read: {}", e.body_text()),
                None,
            )
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body, naming the field (its path, e.g. `work_days[1]`) that is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from an array too (`[null, null]`); our bodies are objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::invalid(
            "invalid_json",
            "the body must be a JSON object",
            None,
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
            None,
        )
    })?;
    // Postgres text cannot hold NUL: refused here, naming the field, not a 500 later.
    if let Some(path) = nul_in(&value, String::new()) {
        let field = path.trim_start_matches('.').to_string();
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{field}: text must not contain the NUL character"),
            Some(&field),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // serde_json appends " at line 1 column 12": noise for a named field.
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else {
                    "invalid_field"
                };
                // A missing or unknown field at the top is named in the message only.
                let named = field_in(message);
                let field = (path != ".").then_some(path.as_str()).or(named.as_deref());
                let message = match field {
                    Some(f) => format!("{f}: {message}"),
                    None => message.to_string(),
                };
                ApiError::invalid(code, message, field)
            }
            _ => ApiError::invalid(
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
                None,
            ),
        }
    })
}

/// The path (`.notes`, `.agents[2]`) of the first string holding a NUL character.
fn nul_in(v: &serde_json::Value, at: String) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(at),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in(x, format!("{at}[{i}]"))),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(format!("{at}.{}", k.replace('\0', "")))
            } else {
                nul_in(x, format!("{at}.{k}"))
            }
        }),
        _ => None,
    }
}

/// serde names a missing or unknown field in backticks: "missing field `x`".
fn field_in(message: &str) -> Option<String> {
    ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(f, _)| f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        days: Option<Vec<String>>,
    }

    fn field(e: ApiError) -> (&'static str, Option<String>, String) {
        match e {
            ApiError::Invalid {
                code,
                field,
                message,
            } => (code, field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        let (code, f, m) = field(parse::<Body>(br#"{"name": "a", "colour": "red"}"#).unwrap_err());
        assert_eq!((code, f.as_deref()), ("unknown_field", Some("colour")));
        assert!(m.contains("unknown field `colour`"), "{m}");
        let (code, f, _) = field(parse::<Body>(br#"{"days": ["mon", 3]}"#).unwrap_err());
        assert_eq!((code, f.as_deref()), ("invalid_field", Some("days[1]")));
        let (code, f, _) = field(parse::<Body>(b"{\"name\": ").unwrap_err());
        assert_eq!((code, f), ("invalid_json", None));
        assert!(parse::<Body>(br#"{"name": "a"}"#).is_ok());
    }

    #[test]
    fn arrays_and_nul_characters_are_refused() {
        let (code, _, _) = field(parse::<Body>(b"[null, null]").unwrap_err());
        assert_eq!(code, "invalid_json");
        let (code, f, _) = field(parse::<Body>(br#"{"days": ["mon", "t\u0000e"]}"#).unwrap_err());
        assert_eq!((code, f.as_deref()), ("invalid_field", Some("days[1]")));
    }
}
