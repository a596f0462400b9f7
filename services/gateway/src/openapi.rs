//! `GET /api/openapi.json`: the REST API as an OpenAPI 3.1 document, generated from the
//! handlers' own attributes and types as the router registers them (`api::api`), so a route
//! is documented by being served.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, Tag};

/// The document's frame; the paths and schemas come from the routes.
pub fn document() -> OpenApi {
    let tag = |name: &str, description: &str| {
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
        tag
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("fleetwatch")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Monitoring for distributed test and benchmark fleets: the live fleet, its history, alerts. \
                     Times are ms since the epoch (RFC 3339 accepted where a time is a parameter); percentages are \
                     0 to 100. Every error is JSON `{\"error\": reason}`. Lists are paged: `limit` and `cursor` in, \
                     `total`, `truncated` and `next_cursor` out.",
                ))
                .build(),
        )
        .tags(Some([
            tag("fleet", "The fleet as a whole, now"),
            tag("workers", "Workers: live figures and history"),
            tag("tasks", "Tasks: live, finished and their statistics"),
            tag("history", "History from the archive"),
            tag("alerts", "Alerts, acknowledgements and silences"),
            tag("views", "The dashboard's derived views: topology, performance, fault tolerance"),
            tag("system", "The pipeline's own services and settings"),
            tag("session", "Signing in and out, and who the caller is"),
        ]))
        .build()
}

/// The document as JSON, made once.
#[derive(Clone)]
pub struct Served(Arc<str>);

impl Served {
    pub fn new(document: OpenApi) -> Self {
        Self(document.to_json().unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}")).into())
    }

    pub fn response(&self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use crate::api::tests::get;
    use crate::live::Live;
    use axum::http::StatusCode;

    /// Every endpoint the two seed documents name, and this project's own.
    const REQUIRED: &[&str] = &[
        // The monitoring guide.
        "/api/status",
        "/api/workers",
        "/api/tasks",
        "/api/metrics",
        "/api/topology",
        "/api/performance",
        "/api/alerts",
        "/api/fault-tolerance",
        // The load balancer design.
        "/api/metrics/system",
        "/api/metrics/system/history",
        "/api/metrics/workers",
        "/api/metrics/workers/{worker_id}",
        "/api/metrics/workers/{worker_id}/history",
        "/api/metrics/tasks",
        "/api/metrics/tasks/{task_id}",
        "/api/metrics/tasks/stats",
        // Ours.
        "/api/tasks/{task_id}",
        "/api/metrics/tasks/distribution",
        "/api/events",
        "/api/fleet",
        "/api/services",
        "/api/settings",
        "/api/alerts/{alert_id}",
        "/api/alerts/{alert_id}/ack",
        "/api/alerts/{alert_id}/resolve",
        "/api/alerts/stats",
        "/api/silences",
        "/api/silences/{silence_id}",
        "/api/topology/workers",
    ];

    #[tokio::test]
    async fn the_document_is_openapi_3_1_and_lists_every_endpoint() {
        let (code, document) = get(&Live::offline(), "/api/openapi.json").await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            document["openapi"].as_str().is_some_and(|version| version.starts_with("3.1")),
            "{}",
            document["openapi"]
        );
        let paths = document["paths"].as_object().expect("paths");
        let missing: Vec<&&str> = REQUIRED.iter().filter(|path| !paths.contains_key(**path)).collect();
        assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("a path item") {
                assert!(operation["summary"].is_string(), "{method} {path} has no summary");
                assert!(operation["responses"].as_object().is_some_and(|responses| !responses.is_empty()));
            }
        }
    }

    /// Every documented path is served: none falls through to the JSON 404 of unknown paths.
    #[tokio::test]
    async fn every_documented_path_is_served() {
        let live = Live::offline();
        let (_, document) = get(&live, "/api/openapi.json").await;
        for path in document["paths"].as_object().expect("paths").keys() {
            let concrete = path.replace(['{', '}'], "");
            let (code, body) = get(&live, &concrete).await;
            let fell_through = code == StatusCode::NOT_FOUND && body["error"] == "no such endpoint";
            assert!(!fell_through, "{path} is documented but not served");
        }
    }

    /// An `/api` route registered around `routes!` would be served but not documented.
    #[test]
    fn api_routes_are_registered_only_through_the_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            let source = std::fs::read_to_string(&path).expect("source");
            for (number, line) in source.lines().enumerate() {
                let plain = line.contains(".route(\"/api") && !line.contains("/api/openapi.json");
                assert!(!plain, "{}:{}: register /api routes with routes!(...)", path.display(), number + 1);
            }
        }
    }
}
