//! Who may call: every service checks the access tokens of its callers
//! itself ([`verify`]: a JWT signed by a key of the provider's JWKS, for
//! this service, with the scope of the operation) in front of its API
//! ([`guard`]), and limits each caller's rate ([`limit`]). Depends on [`kit_config`] (where the provider is) and
//! [`kit_http`] (the problem+json answers). The token a service sends
//! with its own calls is [`kit_upstream::token`]'s.

pub mod guard;
pub mod limit;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verify;

pub use guard::{Scopes, protect};
pub use limit::CallerLimit;
pub use verify::{Principal, Rejection, Verifier};
