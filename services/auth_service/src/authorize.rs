//! A person's side of the authorization code grant (RFC 6749 §4.1, PKCE:
//! RFC 7636, as RFC 9700 writes them): `GET /auth/authorize`, the sign-in
//! form it shows and `POST /auth/sign-in` that answers it, and
//! `GET`/`POST /auth/logout`.
//!
//! - A request whose `client_id` or `redirect_uri` is wrong is an error
//!   page, never a redirect (no open redirector); every other refusal goes
//!   back to the redirect URI with `error`, `error_description`, `state`
//!   and `iss` (RFC 9207).
//! - PKCE is required, with S256 only: `plain` and an absent method are
//!   refused, not defaulted.
//! - The sign-in form carries the request in hidden fields, checked again
//!   as a new request when it comes back, and a CSRF token equal to a
//!   cookie of its own (double submit); its POST must also come from
//!   auth_service's own origin (`Origin`, `Sec-Fetch-Site`).
//! - A sign-in starts a session with a fresh id (its cookie HttpOnly,
//!   SameSite=Lax, `__Host-` and Secure when the issuer is https), and ends
//!   the session whose cookie it came with: while it lives, an
//!   authorization asks for no password.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};

use crate::{
    AppState,
    clients::{Client, Grant, origin_of, split_scope},
    grants::{NewCode, SESSION_TTL, hash, new_secret},
    pages,
    users::{Password, Role, User, UserName},
};

/// The cookies of auth_service: named and scoped by whether the issuer is
/// reached over HTTPS.
#[derive(Clone, Copy, Debug)]
pub struct Cookies {
    pub secure: bool,
}

/// How long the CSRF cookie lives (a sign-in form older than this must be
/// loaded again).
const CSRF_MAX_AGE_SECS: u64 = 60 * 60;

impl Cookies {
    pub fn session(self) -> &'static str {
        if self.secure {
            "__Host-auth_session"
        } else {
            "auth_session"
        }
    }

    pub fn csrf(self) -> &'static str {
        if self.secure {
            "__Host-auth_csrf"
        } else {
            "auth_csrf"
        }
    }

    /// A `Set-Cookie` value. `__Host-` requires `Path=/` and `Secure`;
    /// over plain HTTP the cookies keep to `/auth`.
    pub fn set(self, name: &str, value: &str, max_age: u64) -> String {
        let (path, secure) = if self.secure {
            ("/", "; Secure")
        } else {
            ("/auth", "")
        };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    /// The value of the cookie `name` in the request.
    pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// The parameters of a query or a form, in their order, a name sent twice
/// kept twice (RFC 6749 §3.1 makes that an error: see
/// [`Params::has_duplicates`] and [`Params::count`]).
struct Params(Vec<(String, String)>);

impl Params {
    /// `None`: the text is not `application/x-www-form-urlencoded`.
    fn read(text: &[u8]) -> Option<Self> {
        serde_urlencoded::from_bytes(text).ok().map(Self)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| n == name).count()
    }

    fn has_duplicates(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.0.iter().any(|(n, _)| !seen.insert(n.as_str()))
    }
}

/// An authorization request that passed every check.
#[derive(Clone, Debug)]
struct Request<'a> {
    client: &'a Client,
    redirect_uri: String,
    scope: Option<Vec<String>>,
    state: Option<String>,
    code_challenge: String,
}

impl Request<'_> {
    /// A refusal back to the client, with the request's `state`.
    fn refuse(&self, error: &'static str, description: &'static str) -> Refusal {
        Refusal::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description,
        }
    }
}

/// Why an authorization request is refused.
#[derive(Debug)]
enum Refusal {
    /// The client or its redirect URI is wrong: a page, no redirect.
    Page(String),
    /// Back to the client (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

/// The parameters of an authorization request that the sign-in form
/// carries back.
const REQUEST_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// The checks of RFC 6749 §4.1.1 and RFC 7636 §4.3, in an order that
/// never redirects to an unchecked URI.
fn check<'a>(state: &'a AppState, params: &Params) -> Result<Request<'a>, Refusal> {
    let client = match (params.count("client_id"), params.get("client_id")) {
        (1, Some(id)) => state.clients.get(id),
        (0, _) => {
            return Err(Refusal::Page(
                "The request names no client (client_id).".into(),
            ));
        }
        _ => {
            return Err(Refusal::Page(
                "The request names its client more than once.".into(),
            ));
        }
    };
    let Some(client) = client.filter(|c| c.may_use(Grant::AuthorizationCode)) else {
        return Err(Refusal::Page(
            "The application that sent you here is not known to this sign-in service.".into(),
        ));
    };
    let redirect_uri = match (params.count("redirect_uri"), params.get("redirect_uri")) {
        (1, Some(uri)) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        _ => {
            return Err(Refusal::Page(
                "The address the application asked to return to (redirect_uri) is missing or is not one it registered."
                    .into(),
            ));
        }
    };
    let state_param = params.get("state").map(str::to_owned);
    let refuse = |error, description| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state_param.clone(),
        error,
        description,
    };
    if params.has_duplicates() {
        return Err(refuse(
            "invalid_request",
            "A parameter is given more than once.",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "response_type is missing.")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ));
        }
    }
    if params.get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: code_challenge_method must be S256.",
        ));
    }
    let code_challenge = params
        .get("code_challenge")
        .filter(|c| {
            c.len() == 43
                && c.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or_else(|| {
            refuse(
                "invalid_request",
                "code_challenge must be BASE64URL(SHA-256(code_verifier)), 43 characters.",
            )
        })?
        .to_owned();
    let scope = match params.get("scope") {
        None => None,
        Some(scope) => {
            let asked = split_scope(scope);
            if asked.is_empty() || asked.iter().any(|s| !client.scopes.contains(s)) {
                return Err(refuse(
                    "invalid_scope",
                    "The requested scope is unknown or not allowed for this client.",
                ));
            }
            Some(asked)
        }
    };
    Ok(Request {
        client,
        redirect_uri,
        scope,
        state: state_param,
        code_challenge,
    })
}

/// `uri` with the parameters added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let joint = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{joint}{query}")
}

fn refusal_response(state: &AppState, refusal: Refusal, status: StatusCode) -> Response {
    match refusal {
        Refusal::Page(message) => pages::error(StatusCode::BAD_REQUEST, &message),
        Refusal::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = client_state.as_deref() {
                pairs.push(("state", s));
            }
            pairs.push(("iss", &state.issuer));
            pages::redirect(status, &with_query(&redirect_uri, &pairs))
        }
    }
}

/// A failure on our side once the client and its redirect URI are
/// checked: `server_error` back to the client (RFC 6749 §4.1.2.1), which
/// can say so in its own pages.
fn server_error_back(state: &AppState, request: &Request, status: StatusCode) -> Response {
    refusal_response(
        state,
        request.refuse(
            "server_error",
            "Something failed on our side; it has been logged. Try again in a moment.",
        ),
        status,
    )
}

/// The scopes a code for a user with `role` gets: those asked, or without
/// `scope` the client's, narrowed to those the role has (RFC 6749 §3.3:
/// the token response names them); `None` if none is left.
fn scopes_for(request: &Request, role: Role) -> Option<String> {
    let wanted = request.scope.as_deref().unwrap_or(&request.client.scopes);
    let granted = role.allowed(wanted.iter().map(String::as_str));
    (!granted.is_empty()).then(|| granted.join(" "))
}

/// Issues a code for `user` and redirects to the client with it.
async fn redirect_with_code(
    state: &AppState,
    request: Request<'_>,
    user: &User,
    session_hash: &str,
    status: StatusCode,
) -> Response {
    let Some(scope) = scopes_for(&request, user.role) else {
        tracing::info!(
            client_id = request.client.id,
            user = user.id,
            "no requested scope is the role's"
        );
        // The scopes are the client's (`check`), but this user may have
        // none of them: invalid_scope (RFC 6749 §4.1.2.1), the scope asked
        // being out of this user's reach. Not access_denied, which tells
        // the client that a person said no, and nobody did.
        return refusal_response(
            state,
            request.refuse(
                "invalid_scope",
                "This user may have none of the requested scopes.",
            ),
            status,
        );
    };
    let code = state
        .grants
        .new_code(&NewCode {
            client_id: &request.client.id,
            user_id: user.id,
            session_hash: Some(session_hash),
            redirect_uri: &request.redirect_uri,
            scope: &scope,
            code_challenge: &request.code_challenge,
        })
        .await;
    let code = match code {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = %err, "cannot store a code");
            return server_error_back(state, &request, status);
        }
    };
    tracing::info!(
        client_id = request.client.id,
        user = user.id,
        scope,
        "code issued"
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = request.state.as_deref() {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.issuer));
    pages::redirect(status, &with_query(&request.redirect_uri, &pairs))
}

/// The signed-in user of the request's session cookie, if it lives and
/// the user is not disabled; and the session's hash.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<(User, String)>, ()> {
    let Some(id) = Cookies::get(headers, state.cookies.session()) else {
        return Ok(None);
    };
    let log = |err: kit_data::StoreError| tracing::error!(error = %err, "cannot read a session");
    let Some((user_id, session_hash)) = state.grants.session_user(&id).await.map_err(log)? else {
        return Ok(None);
    };
    let user = state.users.get_by_id(user_id).await.map_err(log)?;
    Ok(user
        .filter(|u| !u.disabled)
        .map(|user| (user, session_hash)))
}

/// `GET /auth/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(params) = Params::read(query.unwrap_or_default().as_bytes()) else {
        return pages::error(StatusCode::BAD_REQUEST, "The request cannot be read.");
    };
    let request = match check(&state, &params) {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&state, refusal, StatusCode::FOUND),
    };
    match signed_in(&state, &headers).await {
        Err(()) => server_error_back(&state, &request, StatusCode::FOUND),
        Ok(Some((user, session_hash))) => {
            redirect_with_code(&state, request, &user, &session_hash, StatusCode::FOUND).await
        }
        Ok(None) => {
            let csrf = Cookies::get(&headers, state.cookies.csrf())
                .filter(|token| token.len() == 43)
                .unwrap_or_else(new_secret);
            let mut response = sign_in_form(&params, &request, &csrf, "", None, StatusCode::OK);
            // Set again when it came with the request: a fresh Max-Age, so
            // that it does not expire while the form is filled in.
            set_cookie(
                &mut response,
                &state
                    .cookies
                    .set(state.cookies.csrf(), &csrf, CSRF_MAX_AGE_SECS),
            );
            response
        }
    }
}

fn sign_in_form(
    params: &Params,
    request: &Request,
    csrf: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let hidden: Vec<(&str, &str)> = REQUEST_PARAMS
        .iter()
        .filter_map(|name| params.get(name).map(|v| (*name, v)))
        .collect();
    pages::sign_in(
        &pages::SignIn {
            client_id: &request.client.id,
            hidden: &hidden,
            csrf,
            username,
            error,
            redirect_origin: origin_of(&request.redirect_uri),
        },
        status,
    )
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::try_from(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Whether a POST comes from auth_service's own pages: `Sec-Fetch-Site`,
/// when sent, is `same-origin` (or `none`: typed by the user), and
/// `Origin`, when sent, is the issuer's origin, or `null` with
/// `Sec-Fetch-Site: same-origin`: the pages' `Referrer-Policy: no-referrer`
/// makes a browser send `Origin: null` with their own forms (Fetch,
/// "append a request `Origin` header"), and then the fetch metadata is
/// what says the form was this origin's (a real browser's sign-in, seen in
/// tests/browser).
fn from_own_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site");
    let site_ok = site.is_none_or(|v| v == "same-origin" || v == "none");
    let same_origin = site.is_some_and(|v| v == "same-origin");
    let origin_ok = headers
        .get(header::ORIGIN)
        .is_none_or(|v| v.as_bytes() == state.origin.as_bytes() || (v == "null" && same_origin));
    site_ok && origin_ok
}

/// The one answer to an unknown user, a wrong password and a disabled
/// user alike.
const WRONG: &str = "The user name or the password is wrong.";

/// The answer while a user name is locked (see `attempts.rs`).
const LOCKED: &str =
    "Too many failed sign-ins for this user name. Wait 15 minutes, then try again.";

/// The user `name` if `password` is its password (see
/// [`crate::users::UserStore::authenticate`]). Argon2 is slow and takes
/// memory on purpose: it waits for one of the few turns that the token
/// endpoint's client secrets take too.
async fn check_password(state: &AppState, name: &str, password: &str) -> Result<Option<User>, ()> {
    let Ok(_turn) = state.hashing.acquire().await else {
        tracing::error!("the password hashing turns are closed");
        return Err(());
    };
    state
        .users
        .authenticate(name, password)
        .await
        .map_err(|err| tracing::error!(error = %err, "cannot check a password"))
}

/// `POST /auth/sign-in`: the sign-in form, back.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !from_own_origin(&state, &headers) {
        tracing::info!("sign-in form posted from another origin");
        return pages::error(
            StatusCode::FORBIDDEN,
            "The form was not sent from this sign-in page. Start again from the application.",
        );
    }
    let Some(form) = Params::read(&body) else {
        return pages::error(StatusCode::BAD_REQUEST, "The form cannot be read.");
    };
    let csrf_cookie = Cookies::get(&headers, state.cookies.csrf());
    // Compared by their hashes: the time a comparison takes tells nothing
    // of how much of the token an attacker guessed right.
    let csrf_ok = match (csrf_cookie.as_deref(), form.get("csrf")) {
        (Some(cookie), Some(sent)) if form.count("csrf") == 1 => hash(cookie) == hash(sent),
        _ => false,
    };
    if !csrf_ok {
        tracing::info!("sign-in form without its CSRF token");
        return pages::error(
            StatusCode::FORBIDDEN,
            "The form has expired or was not sent from this sign-in page. Start again from the application.",
        );
    }
    // The request, checked again: the hidden fields are the client's.
    let request_params = Params(
        form.0
            .iter()
            .filter(|(n, _)| REQUEST_PARAMS.contains(&n.as_str()))
            .cloned()
            .collect(),
    );
    let request = match check(&state, &request_params) {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&state, refusal, StatusCode::SEE_OTHER),
    };
    let (username, password) = match (form.get("username"), form.get("password")) {
        (Some(u), Some(p)) if form.count("username") == 1 && form.count("password") == 1 => (u, p),
        _ => ("", ""),
    };
    // Over-long values are checked as an unknown user would be: the same work.
    let readable = UserName::parse(username).is_ok() && password.len() <= Password::MAX_BYTES;
    // Counted before the password is checked, so that attempts sent at
    // the same time cannot pass the lock.
    if readable && let Err(locked) = state.attempts.begin(username) {
        tracing::warn!(
            client_id = request.client.id,
            "sign-in refused: too many failures for the name"
        );
        let mut response = sign_in_form(
            &request_params,
            &request,
            csrf_cookie.as_deref().unwrap_or_default(),
            username,
            Some(LOCKED),
            StatusCode::TOO_MANY_REQUESTS,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, locked.seconds_left().into());
        return response;
    }
    let (who, what) = if readable {
        (username, password)
    } else {
        ("", "")
    };
    let Ok(user) = check_password(&state, who, what).await else {
        return server_error_back(&state, &request, StatusCode::SEE_OTHER);
    };
    let Some(user) = user else {
        tracing::info!(client_id = request.client.id, "sign-in failed");
        return sign_in_form(
            &request_params,
            &request,
            csrf_cookie.as_deref().unwrap_or_default(),
            username,
            Some(WRONG),
            StatusCode::OK,
        );
    };
    state.attempts.succeeded(username);
    // The session this one replaces (this user's or another's) ends, as a
    // sign-out would end it: its cookie skips the password no more.
    if let Some(replaced) = Cookies::get(&headers, state.cookies.session())
        && let Err(err) = state.grants.end_session(&replaced).await
    {
        tracing::error!(error = %err, "cannot end the session a sign-in replaces");
        return server_error_back(&state, &request, StatusCode::SEE_OTHER);
    }
    let session = match state.grants.start_session(user.id).await {
        Ok(session) => session,
        Err(err) => {
            tracing::error!(error = %err, "cannot start a session");
            return server_error_back(&state, &request, StatusCode::SEE_OTHER);
        }
    };
    tracing::info!(user = user.id, "signed in");
    let mut response = redirect_with_code(
        &state,
        request,
        &user,
        &hash(&session),
        StatusCode::SEE_OTHER,
    )
    .await;
    set_cookie(
        &mut response,
        &state
            .cookies
            .set(state.cookies.session(), &session, SESSION_TTL.as_secs()),
    );
    response
}

/// `GET /auth/logout` (query) and `POST /auth/logout` (form): ends the
/// session of the cookie, if any (its refresh tokens revoked), clears the
/// cookie, and goes to `post_logout_redirect_uri` (302 after a GET, 303
/// See Other after a POST, as sign-in) only if it is one that `client_id`
/// registered; otherwise says "signed out".
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = if body.is_empty() {
        query.unwrap_or_default().into_bytes()
    } else {
        body.to_vec()
    };
    let params = Params::read(&text).unwrap_or(Params(Vec::new()));
    if let Some(id) = Cookies::get(&headers, state.cookies.session()) {
        if let Err(err) = state.grants.end_session(&id).await {
            tracing::error!(error = %err, "cannot end a session");
            return pages::server_error();
        }
        tracing::info!("signed out");
    }
    let target = params
        .get("client_id")
        .and_then(|id| state.clients.get(id))
        .zip(params.get("post_logout_redirect_uri"))
        .filter(|(client, uri)| client.post_logout_redirect_uris.iter().any(|r| r == uri))
        .map(|(_, uri)| match params.get("state") {
            Some(s) => with_query(uri, &[("state", s)]),
            None => uri.to_owned(),
        });
    let redirect_status = if method == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = match target {
        Some(uri) => pages::redirect(redirect_status, &uri),
        None => pages::signed_out(),
    };
    set_cookie(
        &mut response,
        &state.cookies.set(state.cookies.session(), "", 0),
    );
    response
}
