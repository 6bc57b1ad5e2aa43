//! A stand-in token issuer for in-process tests (feature `testing`): it
//! serves a JWKS and a token endpoint that gives any client the scopes it
//! asks for, and signs whatever token a test wants (expired, for another
//! audience, with another key...).

use std::time::Duration;

use axum::{Json, Router, routing::get, routing::post};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use kit_config::AuthConfig;

/// The issuer every token of a [`TestIssuer`] names.
pub const TEST_ISSUER: &str = "https://issuer.test/auth";

/// An Ed25519 key of a test, with its id.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key's raw 32 bytes.
    pub public: [u8; 32],
}

impl TestKey {
    /// A key made from `seed` (tests want the same key every run).
    pub fn from_seed(seed: u8, kid: &str) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let der = key
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let public = key.verifying_key().to_bytes();
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(&der),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                        "x": URL_SAFE_NO_PAD.encode(public)}),
            public,
        }
    }

    /// `claims` signed with this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }
}

/// The audience of a scope, as auth_service gives it.
pub fn audience_of(scope: &str) -> &'static str {
    if scope.starts_with("orders:") {
        "order_service"
    } else {
        "client_service"
    }
}

/// A running stand-in issuer.
pub struct TestIssuer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub key: TestKey,
    task: tokio::task::JoinHandle<()>,
}

impl TestIssuer {
    pub async fn start() -> Self {
        let key = TestKey::from_seed(7, "test-key");
        let jwks = json!({"keys": [key.jwk.clone()]});
        let signer = key.clone();
        let app = Router::new()
            .route("/auth/jwks.json", get(move || async move { Json(jwks.clone()) }))
            .route(
                "/auth/token",
                post(move |body: String| {
                    let signer = signer.clone();
                    async move {
                        let scope = serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
                            .unwrap_or_default()
                            .into_iter()
                            .find(|(k, _)| k == "scope")
                            .map(|(_, v)| v)
                            .unwrap_or_default();
                        let audience = audience_of(scope.split(' ').next().unwrap_or_default());
                        let token = signer.sign(&claims(audience, &scope, 300));
                        Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": scope}))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the test issuer: {e}"));
        let base = listener
            .local_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, key, task }
    }

    /// The settings that point a service at this issuer.
    pub fn config(&self) -> AuthConfig {
        AuthConfig {
            issuer: TEST_ISSUER.to_owned(),
            jwks_url: format!("{}/auth/jwks.json", self.base),
            audience: None,
            jwks_max_age: Duration::from_secs(300),
            token_url: format!("{}/auth/token", self.base),
            client_id: "test-client".to_owned(),
            client_secret: Some("test-secret-0123456789".to_owned()),
            client_secret_file: None,
        }
    }

    /// The same settings as command-line flags.
    pub fn flags(&self) -> Vec<String> {
        let c = self.config();
        vec![
            format!("--issuer={}", c.issuer),
            format!("--jwks-url={}", c.jwks_url),
            format!("--token-url={}", c.token_url),
            format!("--client-id={}", c.client_id),
            format!("--client-secret={}", c.client_secret.unwrap_or_default()),
        ]
    }

    /// A valid token for `audience` with `scope`.
    pub fn token(&self, audience: &str, scope: &str) -> String {
        self.key.sign(&claims(audience, scope, 300))
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The claims of a token of [`TEST_ISSUER`] that expires in `ttl` seconds
/// (a negative `ttl`: expired that long ago).
pub fn claims(audience: &str, scope: &str, ttl: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({
        "iss": TEST_ISSUER, "sub": "test-client", "client_id": "test-client",
        "aud": audience, "scope": scope, "iat": now.min(now + ttl - 1), "exp": now + ttl,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}
