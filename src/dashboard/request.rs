//! What a request asks for: its path, its query and its form fields,
//! decoded once.

use std::borrow::Cow;

use url::form_urlencoded;

/// A request target split into its path and decoded query.
pub struct Target {
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl Target {
    pub fn parse(target: &str) -> Target {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Target {
            path: path.to_owned(),
            query: pairs(query.as_bytes()),
        }
    }

    /// The query parameter `name`, empty when absent.
    pub fn get(&self, name: &str) -> &str {
        get(&self.query, name)
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `name` among `pairs`, empty when absent.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A path segment, percent-decoded.
pub fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_or_else(|_| segment.to_owned(), Cow::into_owned)
}

/// `base` with the non-empty `params` as its query.
pub fn link(base: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
    }
    match query.finish() {
        q if q.is_empty() => base.to_owned(),
        q => format!("{base}?{q}"),
    }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
