//! The console's two cookies, both opaque random ids of its stores: the
//! session (`console_session`) and a sign-in under way (`console_login`).
//! HttpOnly (no script reads them), SameSite=Lax (sent on the top-level
//! navigation back from auth_service, not on another site's POST), Path=/;
//! over HTTPS `Secure` and the `__Host-` prefix (the browser then refuses
//! one set by a sibling domain or over plain HTTP).

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookies of a console reached over HTTPS or not.
#[derive(Clone, Copy, Debug)]
pub struct Cookies {
    secure: bool,
}

/// The session's cookie.
pub const SESSION: &str = "console_session";
/// The cookie of a sign-in under way.
pub const LOGIN: &str = "console_login";

impl Cookies {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// The cookie's name as sent: `__Host-<name>` over HTTPS.
    pub fn name(&self, name: &str) -> String {
        if self.secure {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }

    /// A `Set-Cookie` value for `name` = `value`, kept by the browser for
    /// `max_age_secs` (and never longer than the store keeps the entry).
    pub fn set(&self, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
        self.header(name, value, max_age_secs)
    }

    /// A `Set-Cookie` value that deletes `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        self.header(name, "", 0)
    }

    /// The value of the request's cookie `name`, if any.
    pub fn read(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let wanted = self.name(name);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == wanted)
            .map(|(_, value)| value.to_owned())
    }

    fn header(&self, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}",
            self.name(name)
        );
        // The name and value are ours: base64url ids and fixed names.
        HeaderValue::try_from(text).expect("a cookie of visible ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_http_the_cookie_is_httponly_and_lax() {
        let cookie = Cookies::new(false).set(SESSION, "abc", 60);
        assert_eq!(
            cookie,
            "console_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn over_https_the_cookie_is_host_prefixed_and_secure() {
        let cookie = Cookies::new(true).set(SESSION, "abc", 60);
        assert_eq!(
            cookie,
            "__Host-console_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let cleared = Cookies::new(true).clear(LOGIN);
        assert!(
            cleared
                .to_str()
                .unwrap()
                .starts_with("__Host-console_login=; Path=/; Max-Age=0;")
        );
    }

    #[test]
    fn the_cookie_is_read_by_its_full_name_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("console_session=plain; __Host-console_session=host"),
        );
        assert_eq!(
            Cookies::new(true).read(&headers, SESSION).as_deref(),
            Some("host")
        );
        assert_eq!(
            Cookies::new(false).read(&headers, SESSION).as_deref(),
            Some("plain")
        );
        assert_eq!(Cookies::new(false).read(&headers, LOGIN), None);
    }
}
