//! The environment as a lookup (`.env` already loaded by `main`), and the
//! checks every variable shares: an empty value is unset, a bad one is an
//! error naming the variable and what it must be.

use super::ConfigError;

/// The environment variables, read through a lookup so that a library
/// caller or a test can stand in for the process's own.
pub struct Env<'a>(Box<Lookup<'a>>);

/// A variable's value by its name.
type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Env<'a> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env(Box::new(|name| std::env::var(name).ok()))
    }

    /// `lookup` as the environment.
    pub fn with(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env(Box::new(lookup))
    }

    /// The value of `name`; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// The value of `name` read by `parse`, or an error saying it must be
    /// `expected`; `None` when unset.
    pub fn parse<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match parse(value.trim()) {
                Some(v) => Ok(Some(v)),
                None => Err(ConfigError::variable(
                    name,
                    format!("{name} must be {expected}, not {value:?}"),
                )),
            },
        }
    }

    /// A switch: `1`/`0` (or true/false, yes/no, on/off); `None` when unset.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.parse(name, parse_bool, "1 or 0")
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}
