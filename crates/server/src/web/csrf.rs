//! CSRF protection for every HTML form: an HMAC-signed double-submit token bound to a
//! cookie.
//!
//! The first page that shows a form gives the browser a random 128-bit nonce in the cookie
//! [`COOKIE`] (`HttpOnly`, `SameSite=Strict`, `Secure` when configured). Every form carries
//! the hidden field [`FIELD`], whose value is the HMAC-SHA256 of that nonce under the
//! server's secret. A POST is accepted only when the cookie is present and the field is the
//! HMAC of the cookie's nonce: another site can make a browser send the cookie, but it can
//! neither read it nor compute the HMAC without the secret. A missing or wrong token gives
//! `403 Forbidden`.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The name of the cookie that holds the nonce.
pub const COOKIE: &str = "cw_csrf";
/// The name of the hidden form field that holds the token.
pub const FIELD: &str = "csrf";

/// Length of the nonce in bytes (128 bits).
const NONCE_BYTES: usize = 16;

/// Why a form submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// The browser sent no CSRF cookie (cookies disabled, or the form was not loaded from
    /// this site).
    #[error("the form's security cookie is missing: load the page again and resubmit")]
    MissingCookie,
    /// The form had no CSRF token.
    #[error("the form's security token is missing: load the page again and resubmit")]
    MissingToken,
    /// The token does not belong to the cookie.
    #[error("the form's security token is wrong or expired: load the page again and resubmit")]
    BadToken,
    /// The system's random number generator failed.
    #[error("no random bytes available for a security token")]
    Random,
}

/// A token to put in a form, and the cookie to set when the browser had none.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The value of the hidden field [`FIELD`].
    pub token: String,
    /// A `Set-Cookie` value, when a fresh nonce was made.
    pub set_cookie: Option<HeaderValue>,
}

/// The CSRF token issuer and verifier, keyed by the server's secret.
#[derive(Clone)]
pub struct Csrf {
    key: hmac::Key,
    secure: bool,
    rng: SystemRandom,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csrf")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Csrf {
    /// A CSRF guard keyed by `secret` (at least 32 bytes recommended). `secure_cookies` adds
    /// the `Secure` attribute (the site is served over HTTPS).
    pub fn new(secret: &[u8], secure_cookies: bool) -> Self {
        // Domain separation: the same secret also signs other things.
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            b"certwatch csrf v1",
        );
        Csrf {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            secure: secure_cookies,
            rng: SystemRandom::new(),
        }
    }

    fn token_for(&self, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, nonce.as_bytes()).as_ref())
    }

    /// The token for a page that shows a form. Reuses the browser's nonce when it sent a
    /// well-formed one; otherwise makes a fresh nonce and returns the cookie to set.
    pub fn issue(&self, headers: &HeaderMap) -> Result<Issued, CsrfError> {
        if let Some(nonce) = cookie_nonce(headers) {
            return Ok(Issued {
                token: self.token_for(&nonce),
                set_cookie: None,
            });
        }
        let mut bytes = [0u8; NONCE_BYTES];
        self.rng.fill(&mut bytes).map_err(|_| CsrfError::Random)?;
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict{secure}");
        Ok(Issued {
            token: self.token_for(&nonce),
            set_cookie: HeaderValue::from_str(&cookie).ok(),
        })
    }

    /// Checks a submitted token against the request's cookie, in constant time.
    pub fn verify(&self, headers: &HeaderMap, submitted: Option<&str>) -> Result<(), CsrfError> {
        let nonce = cookie_nonce(headers).ok_or(CsrfError::MissingCookie)?;
        let submitted = submitted
            .filter(|s| !s.is_empty())
            .ok_or(CsrfError::MissingToken)?;
        let tag = URL_SAFE_NO_PAD
            .decode(submitted)
            .map_err(|_| CsrfError::BadToken)?;
        hmac::verify(&self.key, nonce.as_bytes(), &tag).map_err(|_| CsrfError::BadToken)
    }
}

/// The value of the cookie `name` in the request's `Cookie` headers, if any.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// The nonce from the CSRF cookie, when it is well formed.
fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE).filter(|n| {
        URL_SAFE_NO_PAD
            .decode(n)
            .is_ok_and(|bytes| bytes.len() == NONCE_BYTES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        h
    }

    #[test]
    fn issued_token_verifies_with_its_cookie_only() {
        let csrf = Csrf::new(b"0123456789abcdef0123456789abcdef", false);
        let first = csrf.issue(&HeaderMap::new()).unwrap();
        let cookie = first.set_cookie.clone().unwrap();
        assert!(cookie.to_str().unwrap().contains("HttpOnly"));
        assert!(cookie.to_str().unwrap().contains("SameSite=Strict"));
        assert!(!cookie.to_str().unwrap().contains("Secure"));
        let headers = with_cookie(&cookie);
        assert_eq!(csrf.verify(&headers, Some(&first.token)), Ok(()));
        // The same browser gets the same token again, without a new cookie.
        let again = csrf.issue(&headers).unwrap();
        assert!(again.set_cookie.is_none());
        assert_eq!(again.token, first.token);
        // Another browser's cookie does not fit this token.
        let other = csrf.issue(&HeaderMap::new()).unwrap();
        let other_headers = with_cookie(&other.set_cookie.unwrap());
        assert_eq!(
            csrf.verify(&other_headers, Some(&first.token)),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            csrf.verify(&HeaderMap::new(), Some(&first.token)),
            Err(CsrfError::MissingCookie)
        );
        assert_eq!(csrf.verify(&headers, None), Err(CsrfError::MissingToken));
        assert_eq!(
            csrf.verify(&headers, Some("")),
            Err(CsrfError::MissingToken)
        );
        assert_eq!(
            csrf.verify(&headers, Some("not base64 !")),
            Err(CsrfError::BadToken)
        );
        // A server with another secret does not accept the token.
        let other_server = Csrf::new(b"another secret, 32 bytes long!!!", true);
        assert_eq!(
            other_server.verify(&headers, Some(&first.token)),
            Err(CsrfError::BadToken)
        );
        assert!(
            other_server
                .issue(&HeaderMap::new())
                .unwrap()
                .set_cookie
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn malformed_cookie_gets_a_fresh_nonce() {
        let csrf = Csrf::new(b"0123456789abcdef0123456789abcdef", false);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; cw_csrf=short"),
        );
        assert!(csrf.issue(&h).unwrap().set_cookie.is_some());
        assert_eq!(cookie_value(&h, "other").as_deref(), Some("1"));
    }
}
