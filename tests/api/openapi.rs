//! The OpenAPI document: served, OpenAPI 3.1, and in step with the router — every route
//! of `api::router()` is documented with its methods, and every documented operation is
//! served.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(path, method)` of every route `api::router()` adds, read from its source: the route
/// table is the list of `.route("…", get(…).post(…))` calls there.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/api/mod.rs");
    let start = src
        .find("pub fn router()")
        .expect("src/api/mod.rs has `pub fn router()`");
    let end = start + src[start..].find("\n}\n").expect("router() ends");
    let body = &src[start..end];
    assert!(
        !body.contains(".merge(") && !body.contains(".nest("),
        "api::router() merges or nests another router: teach tests/api/openapi.rs to read its routes"
    );
    let mut routes = BTreeSet::new();
    for (at, _) in body.match_indices(".route(") {
        let args = &body[at + ".route(".len()..];
        // The call's arguments, up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let close = args
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a .route( call is closed");
        let args = &args[..close];
        let path = args.split('"').nth(1).expect("a route's path is a literal");
        let handlers = &args[args.find(',').expect("route(path, handlers)")..];
        let mut found = false;
        for m in METHODS {
            for (i, _) in handlers.match_indices(&format!("{m}(")) {
                let before = handlers[..i].chars().next_back();
                if matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                routes.insert((path.to_string(), m.to_string()));
                found = true;
            }
        }
        assert!(found, "no method found in route {path}: {args}");
    }
    assert!(
        routes.len() > 20,
        "the route table looks unread: {routes:?}"
    );
    routes
}

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((path.clone(), m.to_string()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_with_its_methods() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: serde_json::Value = r.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert_eq!(doc["info"]["title"], "dialer");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    let served = router_routes();
    let documented: BTreeSet<_> = documented(&doc)
        .into_iter()
        .filter(|(p, _)| p.starts_with("/api/v1/"))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes of api::router() missing from the OpenAPI document (annotate the handler and add it to paths(…) in src/api/openapi.rs): {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "operations in the OpenAPI document that api::router() does not serve: {unserved:?}"
    );
}

/// A value for a path parameter of the document's type.
fn sample(param: &serde_json::Value) -> String {
    let schema = &param["schema"];
    if let Some(first) = schema["enum"].get(0) {
        return first.as_str().unwrap().to_string();
    }
    if let Some(r) = schema["$ref"].as_str() {
        // An enum component (the campaign action): its first value.
        assert!(r.ends_with("/Action"), "path parameter of type {r}");
        return "pause".into();
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("string"), Some("uuid")) => uuid::Uuid::new_v4().to_string(),
        (Some("integer"), _) => "1".into(),
        _ => "%2B12025550100".into(),
    }
}

/// Every documented operation reaches a handler (no 405, no bare 404 from the router),
/// and every other method on a documented path is refused with 405.
#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let doc: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let client = reqwest::Client::new();
    let mut wrong = BTreeMap::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let mut path = template.clone();
        let params = METHODS
            .iter()
            .filter_map(|m| item.get(*m))
            .flat_map(|op| op["parameters"].as_array().cloned().unwrap_or_default());
        for p in params.filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().unwrap();
            path = path.replace(&format!("{{{name}}}"), &sample(&p));
        }
        for m in METHODS {
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let r = client
                .request(method, format!("{}{path}", app.address))
                .bearer_auth(&t.key)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            if item.get(m).is_some() {
                // The router's own 404 (no route) says `no_such_endpoint`; handlers say why.
                if status == 405 || (status == 404 && body.contains("no_such_endpoint")) {
                    wrong.insert(format!("{m} {path}"), format!("documented, got {status}"));
                }
            } else if status != 405 {
                wrong.insert(
                    format!("{m} {path}"),
                    format!("not documented, but answered {status} {body}"),
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A path no route serves and a method a path does not take answer in the error shape.
#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let r = app.get_as(&t.key, "/api/v1/campaign").await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "no_such_endpoint", "{v}");
    let r = app
        .client
        .put(format!("{}/api/v1/campaigns", app.address))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");

    // Postgres text cannot hold NUL: a filter with one is a 422, not a database error.
    for path in [
        "/api/v1/calls?disposition=%00x",
        "/api/v1/calls/export?phone=%2B1%00",
        "/api/v1/leads?final_reason=a%00",
    ] {
        let r = app.get_as(&t.key, path).await;
        assert_eq!(r.status(), 422, "{path}");
    }
}
