//! Checking an access token: a JWT (RFC 9068) signed with Ed25519 by a key
//! of the provider's JWKS, the algorithm pinned to EdDSA whatever the
//! token's header says, from the configured issuer, for this service's
//! audience, not expired (with [`TOKEN_LEEWAY_SECS`] of leeway).
//!
//! Two caches keep it cheap:
//! - the provider's keys, by `kid`: fetched at the first token, again when
//!   they are older than `AUTH_JWKS_MAX_AGE_SECS`, and when a token names a
//!   `kid` that is not among them (at most once a second: such a token may
//!   wait up to a second for its one refresh), which is how a new key is
//!   picked up after a rotation. While the JWKS cannot be
//!   fetched the keys already known are used; a token whose key is unknown
//!   is then answered 503, not 401 (the token may well be valid);
//! - the tokens already checked, keyed by the token itself, until they
//!   expire: a signature is verified once per token and instance, not on
//!   every request. The map is bounded ([`MAX_REMEMBERED`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse},
};
use serde::Deserialize;

use kit_config::{AuthConfig, TOKEN_LEEWAY_SECS};

/// A longer `Authorization` value is refused before it is read.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// How many checked tokens an instance remembers at most.
pub const MAX_REMEMBERED: usize = 10_000;

/// A token with an unknown `kid` fetches the JWKS again at most this often.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long one fetch of the JWKS may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(2);

/// Who called, from a valid token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: who: the client itself (client credentials), or the person's
    /// user id (a person signed in through a client).
    pub subject: String,
    /// `client_id`.
    pub client_id: String,
    /// `scope`, split on spaces.
    pub scopes: HashSet<String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: u64,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Who the caller is, as one string: the client and the subject (the
    /// same for a program's own token; a person's id for a person acting
    /// through a client). What an `Idempotency-Key` belongs to.
    pub fn caller(&self) -> String {
        format!("{} {}", self.client_id, self.subject)
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Not a valid token for this service (the reason is for the logs only).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Its key could not be looked up: the JWKS could not be fetched.
    #[error("the provider's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: String,
    exp: u64,
    iat: u64,
}

/// The token checker of one service, cloned into its middleware.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("jwks_url", &self.inner.jwks_url)
            .field("validation", &self.inner.validation)
            .finish_non_exhaustive()
    }
}

struct Inner {
    jwks_url: String,
    max_age: Duration,
    http: reqwest::Client,
    validation: Validation,
    keys: RwLock<Keys>,
    /// One fetch of the JWKS at a time; when the last one ended, and whether
    /// it worked.
    refresh: tokio::sync::Mutex<Option<(Instant, bool)>>,
    remembered: RwLock<HashMap<Box<str>, Arc<Principal>>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    fetched: Option<Instant>,
}

impl Verifier {
    /// The checker for tokens of `config`'s issuer, for `default_audience`
    /// unless `AUTH_AUDIENCE` names another.
    pub fn new(config: &AuthConfig, default_audience: &str) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(JWKS_TIMEOUT)
            .build()?;
        let audience = config.audience.as_deref().unwrap_or(default_audience);
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = TOKEN_LEEWAY_SECS;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        Ok(Self {
            inner: Arc::new(Inner {
                jwks_url: config.jwks_url.clone(),
                max_age: config.jwks_max_age,
                http,
                validation,
                keys: RwLock::default(),
                refresh: tokio::sync::Mutex::new(None),
                remembered: RwLock::default(),
            }),
        })
    }

    /// Checks `token`; a token checked before is answered from memory until
    /// it expires.
    pub async fn check(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Invalid(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(known) = self.remembered(token) {
            if now <= known.expires_at + TOKEN_LEEWAY_SECS {
                return Ok(known);
            }
            self.forget(token);
            return Err(Rejection::Invalid("expired".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejection::Invalid(format!("unreadable header: {e}")))?;
        if header.alg != Algorithm::EdDSA {
            return Err(Rejection::Invalid(format!(
                "algorithm {:?}, not EdDSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Rejection::Invalid("no kid".into()))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map_err(|e| Rejection::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.iat > now + TOKEN_LEEWAY_SECS {
            return Err(Rejection::Invalid("issued in the future".into()));
        }
        let client_id = claims
            .client_id
            .or(claims.azp)
            .unwrap_or_else(|| claims.sub.clone());
        let principal = Arc::new(Principal {
            subject: claims.sub,
            client_id,
            scopes: claims
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_at: claims.exp,
        });
        self.remember(token, principal.clone(), now);
        Ok(principal)
    }

    fn remembered(&self, token: &str) -> Option<Arc<Principal>> {
        self.inner
            .remembered
            .read()
            .ok()
            .and_then(|map| map.get(token).cloned())
    }

    fn forget(&self, token: &str) {
        if let Ok(mut map) = self.inner.remembered.write() {
            map.remove(token);
        }
    }

    /// Remembers a checked token. When the map is full, the expired ones go;
    /// if that is not enough, all go (a burst of distinct tokens then costs
    /// one verification each, as without the map).
    fn remember(&self, token: &str, principal: Arc<Principal>, now: u64) {
        let Ok(mut map) = self.inner.remembered.write() else {
            return;
        };
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, p| now <= p.expires_at + TOKEN_LEEWAY_SECS);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(token.into(), principal);
    }

    /// How many checked tokens are remembered now.
    pub fn remembered_count(&self) -> usize {
        self.inner.remembered.read().map_or(0, |map| map.len())
    }

    /// The key `kid`, from the keys fetched, fetched again when they are
    /// too old or do not have it: at most once a second, so a request whose
    /// `kid` is unknown may wait up to a second (then the fetch) for its one
    /// refresh. A fetch that ended after the request arrived is its answer:
    /// requests with made-up `kid`s cost one fetch a second, not one each.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, Rejection> {
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let arrived = Instant::now();
        let mut last = self.inner.refresh.lock().await;
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let known = self.known_key(kid);
        if let Some((ended, fetched)) = *last
            && ended >= arrived
        {
            return match (known, fetched) {
                (Some(key), _) => Ok(key),
                (None, true) => Err(Rejection::Invalid(format!("no key `{kid}` in the JWKS"))),
                (None, false) => Err(Rejection::KeysUnavailable(
                    "the last fetch of the JWKS failed".into(),
                )),
            };
        }
        if let Some((ended, _)) = *last {
            let wait = MIN_REFRESH_INTERVAL.saturating_sub(ended.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let fetched = self.fetch().await;
        *last = Some((Instant::now(), fetched.is_ok()));
        match fetched {
            Ok(keys) => {
                if let Ok(mut current) = self.inner.keys.write() {
                    *current = keys;
                }
            }
            Err(why) => {
                tracing::warn!(url = %self.inner.jwks_url, error = %why, "cannot fetch the JWKS");
                // The keys known so far stay in use while the JWKS is away.
                return known.ok_or(Rejection::KeysUnavailable(why));
            }
        }
        self.known_key(kid)
            .ok_or_else(|| Rejection::Invalid(format!("no key `{kid}` in the JWKS")))
    }

    fn fresh_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let keys = self.inner.keys.read().ok()?;
        let fresh = keys
            .fetched
            .is_some_and(|at| at.elapsed() < self.inner.max_age);
        fresh.then(|| keys.by_kid.get(kid).cloned()).flatten()
    }

    fn known_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.inner.keys.read().ok()?.by_kid.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let response = self
            .inner
            .http
            .get(&self.inner.jwks_url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("it answered {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| e.to_string())?;
        Ok(Keys {
            by_kid: ed25519_keys(&set),
            fetched: Some(Instant::now()),
        })
    }
}

/// The Ed25519 signing keys of a JWKS, by `kid`; any other key is left out.
pub fn ed25519_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| {
            matches!(&jwk.algorithm, AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519)
                && jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == PublicKeyUse::Signature)
        })
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;
    use crate::testing::{TestIssuer, TestKey, claims};

    fn unsigned(header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", part(header), part(claims))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn only_a_valid_token_for_this_audience_passes_and_is_remembered() {
        let issuer = TestIssuer::start().await;
        let verifier = Verifier::new(&issuer.config(), "client_service").unwrap();
        let good = issuer.token("client_service", "clients:read clients:write");
        let principal = verifier.check(&good).await.unwrap();
        assert!(principal.has_scope("clients:write"));
        assert_eq!(principal.client_id, "test-client");
        assert_eq!(verifier.remembered_count(), 1);
        verifier.check(&good).await.unwrap();
        assert_eq!(verifier.remembered_count(), 1);

        let key = &issuer.key;
        let valid = claims("client_service", "clients:read", 300);
        let mut refused = vec![
            ("malformed".to_owned(), "not.a.token".to_owned()),
            (
                "for another audience".into(),
                issuer.token("order_service", "clients:read"),
            ),
            (
                "expired".into(),
                key.sign(&claims("client_service", "clients:read", -60)),
            ),
            (
                "alg none".into(),
                unsigned(&json!({"alg": "none", "kid": key.kid}), &valid),
            ),
            ("8 KiB".into(), format!("{good}{}", "A".repeat(8 * 1024))),
            (
                "unknown kid".into(),
                TestKey::from_seed(9, "other-key").sign(&valid),
            ),
        ];
        let mut other_issuer = valid.clone();
        other_issuer["iss"] = json!("https://elsewhere.test");
        refused.push(("another issuer".into(), key.sign(&other_issuer)));
        // HS256 with the public key as the shared secret: the classic
        // algorithm confusion.
        let hs256 = jsonwebtoken::encode(
            &jsonwebtoken::Header {
                kid: Some(key.kid.clone()),
                ..jsonwebtoken::Header::new(Algorithm::HS256)
            },
            &valid,
            &jsonwebtoken::EncodingKey::from_secret(&key.public),
        )
        .unwrap();
        refused.push(("HS256 with the public key".into(), hs256));
        // A payload changed after signing.
        let signed = key.sign(&valid);
        let parts: Vec<&str> = signed.split('.').collect();
        let mut more = valid.clone();
        more["scope"] = json!("clients:read clients:write");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(more.to_string()),
            parts[2]
        );
        refused.push(("tampered".into(), tampered));
        for (what, token) in refused {
            match verifier.check(&token).await {
                Err(Rejection::Invalid(_)) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(verifier.remembered_count(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_unknown_key_while_the_jwks_is_unreachable_is_unavailable_not_invalid() {
        let issuer = TestIssuer::start().await;
        let mut config = issuer.config();
        config.jwks_url = "http://127.0.0.1:9/auth/jwks.json".into();
        let verifier = Verifier::new(&config, "client_service").unwrap();
        let token = issuer.token("client_service", "clients:read");
        assert!(matches!(
            verifier.check(&token).await,
            Err(Rejection::KeysUnavailable(_))
        ));
        // Asked again: one more fetch, a second after the last, still failing.
        let started = Instant::now();
        assert!(matches!(
            verifier.check(&token).await,
            Err(Rejection::KeysUnavailable(_))
        ));
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
}
