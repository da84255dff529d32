//! Secrets and what is parsed from them, in a leaf module that depends on
//! nothing else of the crate: configuration builds them once, at load, and
//! destinations and backends only use them. Nothing here ever prints a
//! secret.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A secret value: shown as `***` in any output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A webhook signing key, decoded from its `whsec_…` form once, when the
/// configuration loads: a key that exists is a key that signs.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

/// A signing secret that is not `whsec_` followed by base64. The message
/// says what is wrong without showing the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid signing secret: expected whsec_ followed by base64")]
pub struct InvalidSigningKey;

impl SigningKey {
    /// Decodes `whsec_<base64>` (the prefix is optional, as receivers'
    /// libraries accept both).
    pub fn parse(secret: &str) -> Result<SigningKey, InvalidSigningKey> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(SigningKey(key)),
            _ => Err(InvalidSigningKey),
        }
    }

    /// The key's bytes, for the HMAC that signs a message.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// A URL with its credentials and path hidden: `scheme://host:port`, plus
/// `/***` when there was a path (a Slack webhook's path is its secret).
///
/// It never parses: a password holding `#`, `/`, `?` or `@` that was not
/// percent-encoded would make a parser end the userinfo early and show the
/// rest. Anything before the last `@` after the scheme is userinfo, whatever
/// it contains.
pub fn redact_url(url: &str) -> String {
    // A scheme is letters, digits, `+`, `-` and `.` (RFC 3986): a `://`
    // after anything else is inside the userinfo (a password may hold one).
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, url),
    };
    let (creds, rest) = match rest.rfind('@') {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(host_end);
    let path = if path.trim_matches('/').is_empty() {
        ""
    } else {
        "/***"
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{creds}{host}{path}"),
        None => format!("{creds}{host}{path}"),
    }
}

fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_holding_a_scheme_separator_is_hidden_whole() {
        assert_eq!(redact_url(":Zq://Zq@127.0.0.1:6379"), "***@127.0.0.1:6379");
        assert_eq!(
            redact_url("redis://:a://b@cache:6379"),
            "redis://***@cache:6379"
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://***@cache:6379/***"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(
            redact_url("redis://:s3cr3tPASS/x#y?z@cache:6379"),
            "redis://***@cache:6379"
        );
        assert_eq!(
            redact_url("redis://:a@b@c@cache/0"),
            "redis://***@cache/***"
        );
    }

    proptest::proptest! {
        #[test]
        fn redacting_any_url_never_panics_nor_keeps_the_password(user in "[a-z]{0,5}", password in "[A-Za-z0-9]{8,12}", rest in "\\PC{0,30}") {
            let url = format!("redis://{user}:{password}@host:6379/{rest}");
            proptest::prop_assert!(!redact_url(&url).contains(&password));
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("whsec_abc");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(***)");
    }

    #[test]
    fn signing_keys_decode_once_or_are_refused_without_showing_them() {
        assert_eq!(
            SigningKey::parse("whsec_AAEC").unwrap().bytes(),
            &[0u8, 1, 2]
        );
        assert_eq!(SigningKey::parse("AAEC").unwrap().bytes(), &[0u8, 1, 2]);
        for bad in ["whsec_!!!not-base64", "whsec_", ""] {
            let err = SigningKey::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("not-base64"));
        }
    }
}
