//! Who may reach a service's HTTP port, for every service that has one: bearer tokens kept
//! as SHA-256 digests (a token is long and random, so a fast hash is enough and a config file
//! that leaks gives nothing away), a per-client rate limit on writes, and the rule that a
//! port reachable from other hosts is never open by accident.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `sha256sum` of `secret`, lower-case hex: what the config holds for a token.
pub fn sha256_hex(secret: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `presented` hashes to `digest` (hex, either case), in time that does not depend
/// on where they differ.
pub fn token_matches(presented: &str, digest: &str) -> bool {
    let ours = sha256_hex(presented);
    let theirs = digest.trim().to_ascii_lowercase();
    ours.len() == theirs.len() && ours.bytes().zip(theirs.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// Checks a configured digest: 64 hex digits.
pub fn check_digest(what: &str, digest: &str) -> anyhow::Result<()> {
    let digest = digest.trim();
    anyhow::ensure!(
        digest.len() == 64 && digest.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{what} must be a SHA-256 digest (64 hex digits, from `printf %s TOKEN | sha256sum`), got {} characters",
        digest.len()
    );
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// A port bound beyond loopback must ask for credentials, unless the operator said
/// `insecure` in so many words.
pub fn check_exposure(what: &str, host: &str, has_credentials: bool, insecure: bool) -> anyhow::Result<()> {
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback || has_credentials || insecure,
        "{what} is bound to {host}, which other hosts can reach, and no credentials are configured: \
         configure them (README: Security) or pass --insecure to serve it open on purpose"
    );
    Ok(())
}

/// A token bucket per client (an IPv4 address, an IPv6 /64): `per_minute` requests a
/// minute, with bursts of as many. At most `MAX_BUCKETS` are kept: full ones are dropped
/// first, then, in a flood from that many clients, all.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Most buckets kept before the full ones are swept.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request for `client`; `Err(wait)` when its bucket is empty.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let client = network_of(client);
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second < capacity
            });
            // Still full: a flood from many addresses. Forgetting them all keeps memory
            // bounded; each starts again with a full bucket.
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: capacity, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// The unit one client has: its IPv4 address, or its IPv6 /64 (one host holds a whole
/// /64 and could otherwise take a fresh bucket for every request).
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// The client a request comes from: the TCP peer, unless the peer is one of
/// `trusted_proxies`, when it is the last address in `X-Forwarded-For` that is not one of
/// them (a proxy appends the address it saw; what comes before can be forged).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    forwarded_for
        .into_iter()
        .flat_map(|header| header.rsplit(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .find(|address| !trusted_proxies.contains(address))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_its_own_digest() {
        let digest = sha256_hex("s3cret");
        assert!(token_matches("s3cret", &digest));
        assert!(token_matches("s3cret", &digest.to_ascii_uppercase()));
        assert!(!token_matches("s3cret ", &digest));
        assert!(!token_matches("", &digest));
        assert!(check_digest("t", &digest).is_ok());
        assert!(check_digest("t", "s3cret").is_err());
        // `printf %s abc | sha256sum`
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_takes_the_token_of_either_case() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn only_loopback_may_stay_open_without_insecure() {
        assert!(check_exposure("gateway", "127.0.0.1", false, false).is_ok());
        assert!(check_exposure("gateway", "::1", false, false).is_ok());
        assert!(check_exposure("gateway", "localhost", false, false).is_ok());
        let refused = check_exposure("gateway", "0.0.0.0", false, false).expect_err("refused");
        assert!(refused.to_string().contains("--insecure"), "{refused}");
        assert!(check_exposure("gateway", "0.0.0.0", true, false).is_ok());
        assert!(check_exposure("gateway", "0.0.0.0", false, true).is_ok());
    }

    #[test]
    fn the_bucket_empties_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(60);
        let client: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check_at(client, start).is_ok());
        }
        let wait = limiter.check_at(client, start).expect_err("empty");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900), "{wait:?}");
        assert!(limiter.check_at(other, start).is_ok(), "each client has its own bucket");
        assert!(limiter.check_at(client, start + Duration::from_secs(1)).is_ok(), "one a second comes back");
        assert!(RateLimiter::new(0).check_at(client, start).is_ok());

        let limiter = RateLimiter::new(1);
        let one: IpAddr = "2001:db8::1".parse().expect("ip");
        let same_host: IpAddr = "2001:db8::ffff".parse().expect("ip");
        assert!(limiter.check_at(one, start).is_ok());
        assert!(limiter.check_at(same_host, start).is_err(), "one /64 is one client");
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.9".parse().expect("ip");
        let user: IpAddr = "203.0.113.7".parse().expect("ip");
        let header = Some("198.51.100.1, 203.0.113.7");
        assert_eq!(
            client_address(proxy, header, &[proxy]),
            user,
            "the address the proxy saw, not the forged first one"
        );
        assert_eq!(client_address(user, header, &[proxy]), user, "from anyone else the header is ignored");
        assert_eq!(client_address(proxy, None, &[proxy]), proxy);
    }
}
