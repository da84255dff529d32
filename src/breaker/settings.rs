//! A destination's breaker settings, as the config file gives them:
//! `breaker = { after = 10, cooldown = "30s" }`, or `breaker = "off"`.

use std::time::Duration;

/// Consecutive transient failures that open a breaker by default.
pub const DEFAULT_AFTER: u32 = 10;
/// How long a breaker stays open by default before its probe.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// The longest cooldown: failed probes double it up to this.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(600);
/// The most consecutive failures `after` may ask for.
const MAX_AFTER: i64 = 10_000;

/// A destination's breaker: `breaker = { after = 10, cooldown = "30s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub after: u32,
    pub cooldown: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            after: DEFAULT_AFTER,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

/// The config file's `breaker` value: `"off"` (`None`), or a table with
/// `after` (1 to 10000) and `cooldown` (1s to 10m), each defaulted.
pub fn parse(value: &toml::Value) -> Result<Option<Settings>, String> {
    const EXPECTED: &str = "expected \"off\" or a table such as { after = 10, cooldown = \"30s\" }";
    let table = match value {
        toml::Value::String(s) if s == "off" => return Ok(None),
        toml::Value::Table(table) => table,
        _ => return Err(EXPECTED.to_owned()),
    };
    let mut settings = Settings::default();
    for (key, value) in table {
        match (key.as_str(), value) {
            ("after", toml::Value::Integer(n)) if (1..=MAX_AFTER).contains(n) => {
                settings.after = *n as u32;
            }
            ("after", _) => {
                return Err(format!(
                    "after must be a whole number of failures from 1 to {MAX_AFTER}"
                ));
            }
            ("cooldown", toml::Value::String(text)) => settings.cooldown = cooldown(text)?,
            ("cooldown", _) => return Err("cooldown must be a duration such as \"30s\"".into()),
            (other, _) => {
                return Err(format!(
                    "unknown breaker setting `{other}`, expected `after` or `cooldown`"
                ));
            }
        }
    }
    Ok(Some(settings))
}

fn cooldown(text: &str) -> Result<Duration, String> {
    let cooldown = humantime::parse_duration(text)
        .map_err(|e| format!("cooldown {text:?} is not a duration such as \"30s\": {e}"))?;
    if cooldown < Duration::from_secs(1) || cooldown > MAX_COOLDOWN {
        return Err(format!("cooldown {text:?} must be from 1s to 10m"));
    }
    Ok(cooldown)
}
