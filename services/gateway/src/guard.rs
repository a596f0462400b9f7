//! What every request needs before it reaches a handler:
//!
//! - open: `/healthz`, the sign-in page and its assets, `/api/openapi.json`, `/api/session`,
//!   `/api/login`, `/api/logout`;
//! - `/metrics`: open, or the scrape token when `metrics_token_sha256` is set;
//! - every other read: a viewer (a page without one is sent to `/login`);
//! - every write (any method but GET, HEAD, OPTIONS): an operator, from this site only
//!   (`Sec-Fetch-Site`, else `Origin` against `Host`), with the session's `X-CSRF-Token`
//!   when it comes with the cookie, within the client's write rate.
//!
//! The WebSocket is a read, but is refused from other sites as writes are: a browser sends
//! the cookie with it, and its answers are the fleet. With nobody asked (no users or
//! tokens) and no `--insecure`, only loopback host names are served: a web page that rebinds
//! its own name to 127.0.0.1 would otherwise be "this site".

use crate::api::error;
use crate::auth::{Auth, Principal, Role, SESSION_COOKIE, Session, Via};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, PartialEq, Eq)]
enum Need {
    Open,
    Scrape,
    Viewer,
    Operator,
}

fn need(method: &Method, path: &str) -> Need {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match path {
        "/healthz" | "/login" | "/api/openapi.json" | "/api/session" | "/api/login" | "/api/logout" => Need::Open,
        _ if path.starts_with("/assets/") => Need::Open,
        "/metrics" => Need::Scrape,
        _ if read => Need::Viewer,
        _ => Need::Operator,
    }
}

/// Whether a browser says the request comes from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text("origin") else { return false };
    let host = text("x-forwarded-host").or_else(|| text("host")).unwrap_or("");
    origin.split_once("://").map(|(_, authority)| authority) != Some(host)
}

fn client(auth: &Auth, request: &Request) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(address)| address.ip());
    let forwarded = request.headers().get("x-forwarded-for").and_then(|value| value.to_str().ok());
    shared::access::client_address(peer, forwarded, &auth.trusted_proxies)
}

/// Whether `Host` names this machine's loopback: `localhost`, `127.x.x.x`, `[::1]`, any port.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|value| value.to_str().ok()) else { return true };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Who the request comes from, and its session when it came with the cookie: the open
/// principal when nobody is asked, else the bearer token's, else the session's.
pub fn identify(auth: &Auth, headers: &HeaderMap) -> (Option<Principal>, Option<Session>) {
    if !auth.required() {
        return (Some(Auth::open_principal()), None);
    }
    if let Some(token) =
        shared::access::bearer(headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()))
    {
        return (auth.token(token), None);
    }
    let session = session(auth, headers);
    (session.as_ref().map(|session| session.principal.clone()), session)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The session the request's cookie stands for, if it is still good.
pub fn session(auth: &Auth, headers: &HeaderMap) -> Option<Session> {
    cookie(headers, SESSION_COOKIE).and_then(|value| auth.session(value, shared::now_ms()))
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    let mut response = error(status, reason);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The middleware: see the module's comment.
pub async fn guard(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let need = need(request.method(), &path);
    let headers = request.headers();
    if !auth.required() && !auth.any_host && !loopback_host(headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "nobody signs in here, so only loopback host names are served: configure users (README: Security)",
        );
    }
    let guarded = need == Need::Operator || matches!(path.as_str(), "/ws/metrics" | "/api/login" | "/api/logout");
    if guarded && cross_site(headers) {
        return refuse(StatusCode::FORBIDDEN, "cross-site request refused: write from the dashboard's own pages");
    }
    if need == Need::Operator || path == "/api/login" {
        let limiter = if path == "/api/login" { &auth.logins } else { &auth.writes };
        if let Err(wait) = limiter.check(client(&auth, &request)) {
            let mut response =
                refuse(StatusCode::TOO_MANY_REQUESTS, "too many writes from this address; wait and retry");
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    let bearer = shared::access::bearer(headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()));
    match need {
        Need::Open => return next.run(request).await,
        Need::Scrape => {
            return match &auth.metrics_token {
                Some(digest) if !bearer.is_some_and(|token| shared::access::token_matches(token, digest)) => {
                    refuse(StatusCode::UNAUTHORIZED, "/metrics wants the scrape token: Authorization: Bearer <token>")
                }
                _ => next.run(request).await,
            };
        }
        Need::Viewer | Need::Operator => {}
    }
    let (principal, session) = identify(&auth, headers);
    let Some(principal) = principal else {
        let page = request.method() == Method::GET && !path.starts_with("/api/") && !path.starts_with("/ws/");
        if page {
            return sign_in_first(request.uri());
        }
        let reason = match bearer {
            Some(_) => "unknown token",
            None => "sign in on /login, or send Authorization: Bearer <token>",
        };
        return refuse(StatusCode::UNAUTHORIZED, reason);
    };
    if need == Need::Operator {
        if principal.role < Role::Operator {
            return refuse(StatusCode::FORBIDDEN, &format!("{} is a viewer: this needs an operator", principal.name));
        }
        if principal.via == Via::Session {
            let presented = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("");
            let fresh = session.as_ref().is_some_and(|session| auth.csrf_matches(session, presented));
            if !fresh {
                return refuse(StatusCode::FORBIDDEN, "missing or stale X-CSRF-Token: reload the page");
            }
        }
    }
    request.extensions_mut().insert::<Principal>(principal);
    next.run(request).await
}

/// 303 to `/login?next=<where they were going>`.
fn sign_in_first(uri: &axum::http::Uri) -> Response {
    let target = uri.path_and_query().map_or("/", |path| path.as_str());
    let next = percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC);
    let location = format!("/login?next={next}");
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static("/login"))]).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_needs_what_the_module_says() {
        assert_eq!(need(&Method::GET, "/healthz"), Need::Open);
        assert_eq!(need(&Method::GET, "/assets/app.js"), Need::Open);
        assert_eq!(need(&Method::POST, "/api/login"), Need::Open);
        assert_eq!(need(&Method::GET, "/metrics"), Need::Scrape);
        assert_eq!(need(&Method::GET, "/api/workers"), Need::Viewer);
        assert_eq!(need(&Method::GET, "/alerts"), Need::Viewer);
        assert_eq!(need(&Method::POST, "/api/alerts"), Need::Operator);
        assert_eq!(need(&Method::DELETE, "/api/silences/x"), Need::Operator);
        assert_eq!(need(&Method::PUT, "/anything"), Need::Operator);
    }

    #[test]
    fn another_site_is_told_by_fetch_metadata_else_by_origin() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!cross_site(&headers(&[])), "curl sends neither");
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[("origin", "http://gw:8082"), ("host", "gw:8082")])));
        assert!(cross_site(&headers(&[("origin", "http://evil.example"), ("host", "gw:8082")])));
        assert!(!cross_site(&headers(&[
            ("origin", "https://fw.example"),
            ("host", "gw:8082"),
            ("x-forwarded-host", "fw.example")
        ])));
    }

    #[test]
    fn loopback_hosts_are_told_apart_from_other_names() {
        let host = |value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(header::HOST, HeaderValue::from_static(value));
            map
        };
        for ok in ["localhost:8082", "127.0.0.1:8082", "127.0.0.1", "[::1]:8082", "LOCALHOST"] {
            assert!(loopback_host(&host(ok)), "{ok}");
        }
        for refused in ["evil.example:8082", "10.0.0.5:8082", "[2001:db8::1]:8082", "localhost.evil.example"] {
            assert!(!loopback_host(&host(refused)), "{refused}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("theme=dark; fleetwatch_session=abc.def"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&headers, "nope"), None);
    }
}
