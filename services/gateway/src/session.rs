//! Signing in and out, and who the caller is:
//!
//! - `GET /api/session`: whether the gateway asks, who the caller is, and the CSRF token a
//!   page sends with its writes;
//! - `POST /api/login` `{name, password}`: sets the session cookie (HttpOnly,
//!   SameSite=Strict, Secure under HTTPS);
//! - `POST /api/logout`: clears it.

use crate::api::{ErrorBody, error};
use crate::auth::{Auth, Role, SESSION_COOKIE, Session, Via};
use crate::guard::identify;
use crate::live::Live;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(whoami)).routes(routes!(login)).routes(routes!(logout))
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Whether this gateway asks who you are (users or tokens are configured).
    pub auth_required: bool,
    /// Your name; null when you are not signed in.
    pub user: Option<String>,
    pub role: Option<Role>,
    /// How you proved it.
    pub via: Option<Via>,
    /// Send it as `X-CSRF-Token` with every write made with the session cookie.
    pub csrf_token: Option<String>,
    /// When the sign-in ends, ms.
    pub expires_at: Option<i64>,
}

impl SessionInfo {
    fn of(auth: &Auth, session: &Session) -> Self {
        Self {
            auth_required: true,
            user: Some(session.principal.name.clone()),
            role: Some(session.principal.role),
            via: Some(Via::Session),
            csrf_token: Some(auth.csrf_token(session)),
            expires_at: Some(session.expires_at),
        }
    }
}

/// Who am I
///
/// Never refused: it says whether signing in is needed and, when signed in, as whom.
#[utoipa::path(get, path = "/api/session", tag = "session", responses((status = 200, body = SessionInfo)))]
async fn whoami(Extension(auth): Extension<Arc<Auth>>, headers: HeaderMap) -> Json<SessionInfo> {
    let nobody = SessionInfo {
        auth_required: auth.required(),
        user: None,
        role: None,
        via: None,
        csrf_token: None,
        expires_at: None,
    };
    Json(match identify(&auth, &headers) {
        (_, Some(session)) => SessionInfo::of(&auth, &session),
        (Some(principal), None) => {
            SessionInfo { user: Some(principal.name), role: Some(principal.role), via: Some(principal.via), ..nobody }
        }
        (None, None) => nobody,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    name: String,
    password: String,
}

/// Sign in
///
/// Checks the name and password and sets the session cookie. Ten attempts a minute per
/// address (`login_rate_per_min`).
#[utoipa::path(post, path = "/api/login", tag = "session", request_body = Login,
    responses((status = 200, body = SessionInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    Extension(auth): Extension<Arc<Auth>>,
    headers: HeaderMap,
    given: Result<Json<Login>, JsonRejection>,
) -> Response {
    let Login { name, password } = match given {
        Ok(Json(login)) => login,
        Err(JsonRejection::MissingJsonContentType(_)) => {
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json");
        }
        Err(other) => return error(StatusCode::BAD_REQUEST, &other.body_text()),
    };
    if !auth.required() {
        return error(StatusCode::BAD_REQUEST, "this gateway has no users: nobody needs to sign in");
    }
    // argon2id takes tens of ms of CPU on purpose: off the async threads.
    let checker = auth.clone();
    let checked = tokio::task::spawn_blocking(move || checker.sign_in(&name, &password).cloned()).await;
    let Ok(Some(user)) = checked else {
        tracing::warn!("a sign-in failed");
        return error(StatusCode::UNAUTHORIZED, "wrong name or password");
    };
    let (cookie, _) = auth.issue(&user, shared::now_ms());
    let Some(session) = auth.session(&cookie, shared::now_ms()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the new session did not verify");
    };
    tracing::info!(user = %user.name, "signed in");
    let max_age = (session.expires_at - shared::now_ms()) / 1000;
    with_cookie(Json(SessionInfo::of(&auth, &session)).into_response(), &auth, &headers, &cookie, max_age)
}

/// Sign out
///
/// Clears the session cookie.
#[utoipa::path(post, path = "/api/logout", tag = "session", responses((status = 204)))]
async fn logout(headers: HeaderMap, Extension(auth): Extension<Arc<Auth>>) -> Response {
    with_cookie(StatusCode::NO_CONTENT.into_response(), &auth, &headers, "", 0)
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// `response` setting the session cookie to `value` for `max_age` seconds (0 clears it).
fn with_cookie(mut response: Response, auth: &Auth, headers: &HeaderMap, value: &str, max_age: i64) -> Response {
    let secure = if auth.secure_cookie || forwarded_https(headers) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the session cookie is not a header value"),
    }
}
