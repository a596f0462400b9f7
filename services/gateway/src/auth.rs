//! Who is asking: users (argon2id password hashes) who sign in for a session cookie, and
//! bearer tokens (SHA-256 digests) for programs, each a viewer or an operator. With neither
//! configured the gateway asks nobody (`just up` on loopback); `guard` decides what each
//! request needs.
//!
//! Sessions are stateless: the cookie carries the user, its expiry and a fingerprint of the
//! user's password hash, signed with HMAC-SHA-256. A restart keeps them when
//! `session_secret` is set (and gateways that share it share sessions); changing a password
//! ends that user's sessions; removing a user ends theirs at once.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};
use shared::access::{RateLimiter, check_digest, token_matches};
use std::collections::HashMap;
use utoipa::ToSchema;

/// What a person or program may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also acknowledges, resolves, raises and silences alerts.
    Operator,
}

/// `[[gateway.auth.users]]`: someone who signs in on `/login`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// An argon2id PHC string, from `fleetwatch-gateway --hash-password`.
    pub password_hash: String,
}

/// `[[gateway.auth.tokens]]`: a program that sends `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who it is, for the audit trail (`by` of what it does) and the logs.
    pub name: String,
    pub role: Role,
    /// `printf %s "$TOKEN" | sha256sum`: the gateway never holds the token itself.
    pub sha256: String,
}

// Hand-written: a hash in a log line helps an attacker guess offline.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// `[gateway.auth]`. README: Security.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub users: Vec<User>,
    pub tokens: Vec<Token>,
    /// Signs session cookies; at least 32 characters. Gateways that share it share sessions,
    /// and sessions outlive a restart. Default: random at each start.
    pub session_secret: Option<String>,
    /// How long a sign-in lasts, hours. Default 12.
    pub session_hours: u32,
    /// Mark the session cookie `Secure` even when no proxy says the request came over HTTPS
    /// (`X-Forwarded-Proto: https` always does). Default false.
    pub secure_cookie: bool,
    /// `/metrics` wants `Authorization: Bearer <token>` with this token's SHA-256 digest.
    /// Default: `/metrics` is open.
    pub metrics_token_sha256: Option<String>,
    /// Writes (acknowledge, silence, ...) each client address may make a minute; 0: no limit.
    /// Default 120.
    pub write_rate_per_min: u32,
    /// Sign-in attempts each client address may make a minute. Default 10.
    pub login_rate_per_min: u32,
    /// Reverse proxies in front of the gateway: behind one of these, the client is the last
    /// address in `X-Forwarded-For` that is not a proxy (for the rate limits). Default none.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            tokens: Vec::new(),
            session_secret: None,
            session_hours: 12,
            secure_cookie: false,
            metrics_token_sha256: None,
            write_rate_per_min: 120,
            login_rate_per_min: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("users", &self.users)
            .field("tokens", &self.tokens)
            .field("session_secret", &self.session_secret.as_ref().map(|_| "<set>"))
            .field("session_hours", &self.session_hours)
            .field("secure_cookie", &self.secure_cookie)
            .field("metrics_token_sha256", &self.metrics_token_sha256.as_ref().map(|_| "<set>"))
            .field("write_rate_per_min", &self.write_rate_per_min)
            .field("login_rate_per_min", &self.login_rate_per_min)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The session cookie from `/login`.
    Session,
    /// A bearer token.
    Token,
    /// Nobody is asked: no users or tokens are configured.
    Open,
}

/// Who a request comes from, for handlers (the `by` of what it does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// A signed-in session, as the cookie carries it.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub expires_at: i64,
    /// The cookie's value, which the CSRF token is derived from.
    pub cookie: String,
}

pub const SESSION_COOKIE: &str = "fleetwatch_session";

/// The configured identities, ready to check requests against.
pub struct Auth {
    users: HashMap<String, User>,
    tokens: Vec<Token>,
    key: hmac::Key,
    session_ms: i64,
    pub secure_cookie: bool,
    pub metrics_token: Option<String>,
    pub writes: RateLimiter,
    pub logins: RateLimiter,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve any `Host` when nobody is asked (`--insecure`); else only loopback names, so a
    /// web page cannot reach an open gateway through a rebound DNS name.
    pub any_host: bool,
    /// Verified against when the name is unknown, so a wrong name costs what a wrong
    /// password does and timing tells nobody which names exist.
    decoy: String,
}

impl Auth {
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let mut users = HashMap::new();
        for user in &config.users {
            anyhow::ensure!(!user.name.trim().is_empty(), "gateway.auth.users: a user has no name");
            PasswordHash::new(&user.password_hash).map_err(|err| {
                anyhow::anyhow!(
                    "gateway.auth.users {:?}: password_hash is not a PHC string ({err}); make one with fleetwatch-gateway --hash-password",
                    user.name
                )
            })?;
            anyhow::ensure!(
                users.insert(user.name.clone(), user.clone()).is_none(),
                "gateway.auth.users: {:?} is there twice",
                user.name
            );
        }
        for token in &config.tokens {
            check_digest(&format!("gateway.auth.tokens {:?} sha256", token.name), &token.sha256)?;
        }
        if let Some(digest) = &config.metrics_token_sha256 {
            check_digest("gateway.auth.metrics_token_sha256", digest)?;
        }
        let key = match &config.session_secret {
            Some(secret) => {
                anyhow::ensure!(secret.len() >= 32, "gateway.auth.session_secret must be at least 32 characters");
                secret.as_bytes().to_vec()
            }
            None => {
                let mut key = vec![0u8; 32];
                OsRng.fill_bytes(&mut key);
                key
            }
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        anyhow::ensure!(config.session_hours >= 1, "gateway.auth.session_hours must be at least 1");
        Ok(Self {
            users,
            tokens: config.tokens.clone(),
            key,
            session_ms: i64::from(config.session_hours) * 3_600_000,
            secure_cookie: config.secure_cookie,
            metrics_token: config.metrics_token_sha256.clone(),
            writes: RateLimiter::new(config.write_rate_per_min),
            logins: RateLimiter::new(config.login_rate_per_min.max(1)),
            trusted_proxies: config.trusted_proxies.clone(),
            any_host: false,
            decoy: hash_password("not a password of anyone's")?,
        })
    }

    /// Whether anyone is asked who they are.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    pub fn open_principal() -> Principal {
        Principal { name: "anonymous".into(), role: Role::Operator, via: Via::Open }
    }

    /// The configured token `presented` is, if any. Every token is compared, so the time
    /// taken says nothing of which.
    pub fn token(&self, presented: &str) -> Option<Principal> {
        let mut found = None;
        for token in &self.tokens {
            if token_matches(presented, &token.sha256) && found.is_none() {
                found = Some(Principal { name: token.name.clone(), role: token.role, via: Via::Token });
            }
        }
        found
    }

    /// Checks a name and password (slow on purpose: argon2id); the user on success.
    pub fn sign_in(&self, name: &str, password: &str) -> Option<&User> {
        let user = self.users.get(name);
        let hash = user.map_or(self.decoy.as_str(), |user| user.password_hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let verified = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        user.filter(|_| verified)
    }

    /// A new session cookie value for `user`, good until the returned time (ms).
    pub fn issue(&self, user: &User, now_ms: i64) -> (String, i64) {
        let expires_at = now_ms + self.session_ms;
        let payload = format!("{}.{expires_at}.{}", URL_SAFE_NO_PAD.encode(&user.name), fingerprint(user));
        let tag = URL_SAFE_NO_PAD.encode(self.sign("session", &payload));
        (format!("{payload}.{tag}"), expires_at)
    }

    /// The session a cookie value stands for: signed by us, not expired, for a user who is
    /// still configured with the same password.
    pub fn session(&self, cookie: &str, now_ms: i64) -> Option<Session> {
        let (payload, tag) = cookie.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.verify("session", payload, &tag).then_some(())?;
        let mut parts = payload.split('.');
        let name = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let expires_at: i64 = parts.next()?.parse().ok()?;
        let print = parts.next()?;
        let user = self.users.get(&name)?;
        if expires_at <= now_ms || print != fingerprint(user) {
            return None;
        }
        Some(Session {
            principal: Principal { name, role: user.role, via: Via::Session },
            expires_at,
            cookie: cookie.to_owned(),
        })
    }

    /// The token a page sends as `X-CSRF-Token` with each write: only a page of this origin
    /// can read it (from `/api/session`), and it belongs to one session.
    pub fn csrf_token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(self.sign("csrf", &session.cookie))
    }

    pub fn csrf_matches(&self, session: &Session, presented: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented.trim()) else { return false };
        self.verify("csrf", &session.cookie, &tag)
    }

    /// What is signed: the purpose, so a session's tag is never a valid CSRF token.
    fn message(purpose: &str, text: &str) -> Vec<u8> {
        [purpose.as_bytes(), b"\n", text.as_bytes()].concat()
    }

    fn sign(&self, purpose: &str, text: &str) -> Vec<u8> {
        hmac::sign(&self.key, &Self::message(purpose, text)).as_ref().to_vec()
    }

    /// In constant time.
    fn verify(&self, purpose: &str, text: &str, tag: &[u8]) -> bool {
        hmac::verify(&self.key, &Self::message(purpose, text), tag).is_ok()
    }
}

/// A short digest of the user's password hash: a new password ends the old sessions.
fn fingerprint(user: &User) -> String {
    URL_SAFE_NO_PAD.encode(&ring::digest::digest(&ring::digest::SHA256, user.password_hash.as_bytes()).as_ref()[..12])
}

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("hashing the password: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> (Auth, User) {
        let ada =
            User { name: "ada".into(), role: Role::Operator, password_hash: hash_password("lovelace").expect("hash") };
        let config = AuthConfig {
            users: vec![ada.clone()],
            tokens: vec![Token { name: "ci".into(), role: Role::Viewer, sha256: shared::access::sha256_hex("t0ken") }],
            ..AuthConfig::default()
        };
        (Auth::new(&config).expect("valid"), ada)
    }

    #[test]
    fn a_password_signs_in_only_its_user() {
        let (auth, _) = auth();
        assert_eq!(auth.sign_in("ada", "lovelace").map(|user| user.role), Some(Role::Operator));
        assert!(auth.sign_in("ada", "babbage").is_none());
        assert!(auth.sign_in("nobody", "lovelace").is_none());
        assert_eq!(auth.token("t0ken").map(|p| (p.name, p.role)), Some(("ci".into(), Role::Viewer)));
        assert!(auth.token("t0ken2").is_none());
    }

    #[test]
    fn a_session_is_good_until_it_expires_and_cannot_be_forged() {
        let (auth, ada) = auth();
        let (cookie, expires_at) = auth.issue(&ada, 1_000);
        let session = auth.session(&cookie, 2_000).expect("valid");
        assert_eq!(session.principal, Principal { name: "ada".into(), role: Role::Operator, via: Via::Session });
        assert!(auth.session(&cookie, expires_at).is_none(), "expired");
        let forged = cookie.replacen(&URL_SAFE_NO_PAD.encode("ada"), &URL_SAFE_NO_PAD.encode("eve"), 1);
        assert!(auth.session(&forged, 2_000).is_none(), "another name breaks the signature");
        let longer = cookie.replacen(&expires_at.to_string(), &(expires_at * 10).to_string(), 1);
        assert!(auth.session(&longer, 2_000).is_none(), "a later expiry breaks the signature");

        let (other, _) = self::auth();
        assert!(other.session(&cookie, 2_000).is_none(), "another gateway's random key does not know it");
    }

    #[test]
    fn a_new_password_ends_old_sessions() {
        let (auth, ada) = auth();
        let (cookie, _) = auth.issue(&ada, 1_000);
        let changed = User { password_hash: hash_password("new").expect("hash"), ..ada };
        let config = AuthConfig { users: vec![changed], session_secret: None, ..AuthConfig::default() };
        let mut again = Auth::new(&config).expect("valid");
        again.key = auth.key;
        assert!(again.session(&cookie, 2_000).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let (auth, ada) = auth();
        let first = auth.session(&auth.issue(&ada, 1_000).0, 2_000).expect("valid");
        let second = auth.session(&auth.issue(&ada, 5_000).0, 6_000).expect("valid");
        let token = auth.csrf_token(&first);
        assert!(auth.csrf_matches(&first, &token));
        assert!(!auth.csrf_matches(&second, &token));
        assert!(!auth.csrf_matches(&first, "nonsense"));
    }

    #[test]
    fn bad_configuration_is_refused_with_the_reason() {
        let bad_hash = AuthConfig {
            users: vec![User { name: "ada".into(), role: Role::Viewer, password_hash: "plain".into() }],
            ..AuthConfig::default()
        };
        let err = Auth::new(&bad_hash).err().expect("refused").to_string();
        assert!(err.contains("--hash-password"), "{err}");
        let bad_token = AuthConfig {
            tokens: vec![Token { name: "ci".into(), role: Role::Viewer, sha256: "t0ken".into() }],
            ..AuthConfig::default()
        };
        assert!(Auth::new(&bad_token).is_err());
        let short = AuthConfig { session_secret: Some("short".into()), ..AuthConfig::default() };
        assert!(Auth::new(&short).is_err());
    }
}
