//! The signing keys: Ed25519, read from PKCS#8 PEM files, each named by its
//! RFC 7638 thumbprint (its `kid`), published as a JWKS (RFC 7517).

use std::path::Path;

use argon2::password_hash::rand_core::OsRng;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The key that signs, and every key published.
pub struct Keys {
    pub kid: String,
    pub signing: EncodingKey,
    /// The JWKS document, as served.
    pub jwks: Value,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// The signing key from `signing`, and the keys of `published` beside it
    /// in the JWKS (each once).
    pub fn load(signing: &Path, published: &[impl AsRef<Path>]) -> Result<Self, String> {
        let key = read_private(signing)?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("{}: {e}", signing.display()))?;
        let mut public = vec![key.verifying_key()];
        for path in published {
            let key = read_public(path.as_ref())?;
            if !public.contains(&key) {
                public.push(key);
            }
        }
        Ok(Self {
            kid: kid(&key.verifying_key()),
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            jwks: json!({ "keys": public.iter().map(jwk).collect::<Vec<_>>() }),
        })
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_private(path: &Path) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(&read(path)?).map_err(|e| {
        format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM ({e}); make one with `auth_service new-key FILE`",
            path.display()
        )
    })
}

/// A public key from a PEM file that holds it, or its private key.
fn read_public(path: &Path) -> Result<VerifyingKey, String> {
    let text = read(path)?;
    if let Ok(key) = SigningKey::from_pkcs8_pem(&text) {
        return Ok(key.verifying_key());
    }
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        format!(
            "{} is not an Ed25519 key in PEM (private PKCS#8 or public SPKI): {e}",
            path.display()
        )
    })
}

/// The key's JWK, as published.
pub fn jwk(key: &VerifyingKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        "kid": kid(key),
        "use": "sig",
        "alg": "EdDSA",
    })
}

/// The key's id: its JWK thumbprint (RFC 7638, SHA-256), so that the same
/// key always has the same id and no id needs to be configured.
pub fn kid(key: &VerifyingKey) -> String {
    let members = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(members.as_bytes()))
}

/// A new signing key, as PKCS#8 PEM, and its id.
pub fn new_key() -> Result<(String, String), String> {
    let key = SigningKey::generate(&mut OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    Ok((pem.to_string(), kid(&key.verifying_key())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_loads_with_its_kid_and_is_published_once() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, id) = new_key().unwrap();
        let (other_pem, other_id) = new_key().unwrap();
        assert_ne!(id, other_id);
        let path = dir.path().join("a.pem");
        let other = dir.path().join("b.pem");
        std::fs::write(&path, pem).unwrap();
        std::fs::write(&other, other_pem).unwrap();
        let keys = Keys::load(&path, &[&path, &other]).unwrap();
        assert_eq!(keys.kid, id);
        let kids: Vec<&str> = keys.jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [id.as_str(), other_id.as_str()]);
        std::fs::write(&other, "not a key").unwrap();
        assert!(Keys::load(&path, &[&other]).unwrap_err().contains("b.pem"));
    }

    /// RFC 8037 appendix A.3: the thumbprint of its example key.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(kid(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
