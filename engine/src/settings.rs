//! Session settings as PostgreSQL clients know them (`SET`, `SHOW`,
//! `current_setting`, ParameterStatus), kept per session.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The PostgreSQL version bianzhi presents itself as.
pub const SERVER_VERSION: &str = "16.6";
/// `server_version_num` for [`SERVER_VERSION`].
pub const SERVER_VERSION_NUM: &str = "160006";

/// What `version()` returns: PostgreSQL's format, so that clients parsing it
/// (SQLAlchemy, Superset) accept bianzhi.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (bianzhi {}) on {}-unknown-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// One known setting.
#[derive(Debug, Clone, Copy)]
struct Known {
    name: &'static str,
    default: &'static str,
    read_only: bool,
    /// Sent as ParameterStatus at startup and when it changes.
    reported: bool,
}

const fn known(
    name: &'static str,
    default: &'static str,
    read_only: bool,
    reported: bool,
) -> Known {
    Known {
        name,
        default,
        read_only,
        reported,
    }
}

/// Settings bianzhi knows, with PostgreSQL's spelling and defaults.
const KNOWN: &[Known] = &[
    known("application_name", "", false, true),
    known("bytea_output", "hex", false, false),
    known("client_encoding", "UTF8", false, true),
    known("client_min_messages", "notice", false, false),
    known("DateStyle", "ISO, MDY", false, true),
    known(
        "default_transaction_isolation",
        "read committed",
        false,
        false,
    ),
    known("default_transaction_read_only", "off", false, true),
    known("extra_float_digits", "1", false, false),
    known("in_hot_standby", "off", true, true),
    known("integer_datetimes", "on", true, true),
    known("IntervalStyle", "postgres", false, true),
    known("is_superuser", "on", true, true),
    known("lc_collate", "C.UTF-8", true, false),
    known("lc_ctype", "C.UTF-8", true, false),
    known("lc_messages", "C.UTF-8", false, false),
    known("lc_monetary", "C.UTF-8", false, false),
    known("lc_numeric", "C.UTF-8", false, false),
    known("lc_time", "C.UTF-8", false, false),
    known("lock_timeout", "0", false, false),
    known("max_identifier_length", "63", true, false),
    known("search_path", "\"$user\", public", false, true),
    known("server_encoding", "UTF8", true, true),
    known("server_version", SERVER_VERSION, true, true),
    known("server_version_num", SERVER_VERSION_NUM, true, false),
    known("session_authorization", "postgres", true, true),
    known("standard_conforming_strings", "on", false, true),
    known("statement_timeout", "0", false, false),
    known("idle_in_transaction_session_timeout", "0", false, false),
    known("TimeZone", "UTC", false, true),
    known("transaction_isolation", "read committed", false, false),
    known("transaction_read_only", "off", false, false),
    known("work_mem", "4MB", false, false),
    known("max_connections", "100", true, false),
];

/// A setting name could not be set or shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unrecognized configuration parameter \"{0}\"")]
    Unknown(String),
    #[error("parameter \"{0}\" cannot be changed")]
    ReadOnly(String),
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    InvalidValue { name: String, value: String },
}

/// The settings of one session. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: Arc<RwLock<BTreeMap<String, String>>>,
}

fn find(name: &str) -> Option<&'static Known> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "time zone" | "time_zone" => "timezone".to_string(),
        "transaction isolation level" => "transaction_isolation".to_string(),
        other => other.to_string(),
    };
    KNOWN.iter().find(|k| k.name.eq_ignore_ascii_case(&lower))
}

impl Settings {
    /// Fresh settings, with the startup parameters a client sent applied.
    pub fn new(startup: &[(String, String)], user: &str) -> Settings {
        let settings = Settings::default();
        if let Ok(mut values) = settings.values.write() {
            values.insert("session_authorization".into(), user.to_string());
            for (name, value) in startup {
                if let Some(known) = find(name) {
                    if !known.read_only {
                        values.insert(known.name.to_ascii_lowercase(), value.clone());
                    }
                }
            }
        }
        settings
    }

    /// The current value of a setting, in PostgreSQL's text form.
    pub fn get(&self, name: &str) -> Result<String, SettingError> {
        let Some(known) = find(name) else {
            // Custom placeholders (`myapp.flag`) behave as in PostgreSQL.
            if name.contains('.') {
                return self
                    .values
                    .read()
                    .ok()
                    .and_then(|v| v.get(&name.to_ascii_lowercase()).cloned())
                    .ok_or_else(|| SettingError::Unknown(name.to_string()));
            }
            return Err(SettingError::Unknown(name.to_string()));
        };
        let key = known.name.to_ascii_lowercase();
        Ok(self
            .values
            .read()
            .ok()
            .and_then(|v| v.get(&key).cloned())
            .unwrap_or_else(|| known.default.to_string()))
    }

    /// Change a setting; returns the canonical name when clients must be told
    /// (a ParameterStatus), None otherwise.
    pub fn set(&self, name: &str, value: &str) -> Result<Option<&'static str>, SettingError> {
        let Some(known) = find(name) else {
            if name.contains('.') && !name.starts_with('.') {
                if let Ok(mut values) = self.values.write() {
                    values.insert(name.to_ascii_lowercase(), value.to_string());
                }
                return Ok(None);
            }
            return Err(SettingError::Unknown(name.to_string()));
        };
        if known.read_only {
            // PostgreSQL accepts setting a read-only parameter to its current value.
            if self.get(known.name).as_deref() == Ok(value) {
                return Ok(None);
            }
            return Err(SettingError::ReadOnly(known.name.to_string()));
        }
        let value = normalize(known.name, value)?;
        if let Ok(mut values) = self.values.write() {
            values.insert(known.name.to_ascii_lowercase(), value);
        }
        Ok(known.reported.then_some(known.name))
    }

    /// Back to the default (`RESET name`).
    pub fn reset(&self, name: &str) -> Result<Option<&'static str>, SettingError> {
        let known = find(name).ok_or_else(|| SettingError::Unknown(name.to_string()))?;
        if known.read_only {
            return Err(SettingError::ReadOnly(known.name.to_string()));
        }
        if let Ok(mut values) = self.values.write() {
            values.remove(&known.name.to_ascii_lowercase());
        }
        Ok(known.reported.then_some(known.name))
    }

    /// Everything back to defaults (`RESET ALL`, `DISCARD ALL`); returns the
    /// reported settings whose value changed.
    pub fn reset_all(&self) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if let Ok(mut values) = self.values.write() {
            let user = values.get("session_authorization").cloned();
            for known in KNOWN.iter().filter(|k| !k.read_only) {
                if values.remove(&known.name.to_ascii_lowercase()).is_some() && known.reported {
                    changed.push(known.name);
                }
            }
            values.retain(|k, _| !k.contains('.'));
            if let Some(user) = user {
                values.insert("session_authorization".into(), user);
            }
        }
        changed
    }

    /// Every known setting with its current value (`SHOW ALL`).
    pub fn all(&self) -> Vec<(&'static str, String)> {
        KNOWN
            .iter()
            .map(|k| (k.name, self.get(k.name).unwrap_or_default()))
            .collect()
    }

    /// The settings sent as ParameterStatus at startup.
    pub fn reported(&self) -> Vec<(&'static str, String)> {
        KNOWN
            .iter()
            .filter(|k| k.reported)
            .map(|k| (k.name, self.get(k.name).unwrap_or_default()))
            .collect()
    }

    /// `statement_timeout` as a duration (None when 0).
    pub fn statement_timeout(&self) -> Option<Duration> {
        let value = self.get("statement_timeout").ok()?;
        parse_duration_ms(&value)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }

    /// The schemas of `search_path` that are not `$user`, in order.
    pub fn search_path(&self) -> Vec<String> {
        self.get("search_path")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty() && s != "$user")
            .collect()
    }
}

/// Check and canonicalise a value.
fn normalize(name: &str, value: &str) -> Result<String, SettingError> {
    let invalid = || SettingError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
    };
    match name {
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            let ms = parse_duration_ms(value).ok_or_else(invalid)?;
            Ok(if ms == 0 {
                "0".into()
            } else {
                format_duration_ms(ms)
            })
        }
        "TimeZone" => {
            let tz = value.trim();
            if tz.eq_ignore_ascii_case("utc")
                || tz.eq_ignore_ascii_case("gmt")
                || tz.eq_ignore_ascii_case("z")
            {
                return Ok("UTC".into());
            }
            if tz.parse::<chrono_tz_like::Offset>().is_ok() || is_iana_name(tz) {
                Ok(tz.to_string())
            } else {
                Err(invalid())
            }
        }
        "client_encoding" => {
            let upper = value.trim().to_ascii_uppercase().replace('-', "");
            if upper == "UTF8" || upper == "UNICODE" {
                Ok("UTF8".into())
            } else {
                Err(invalid())
            }
        }
        "standard_conforming_strings"
        | "default_transaction_read_only"
        | "transaction_read_only" => match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok("on".into()),
            "off" | "false" | "0" | "no" => Ok("off".into()),
            _ => Err(invalid()),
        },
        "extra_float_digits" => {
            let digits: i32 = value.trim().parse().map_err(|_| invalid())?;
            if (-15..=3).contains(&digits) {
                Ok(digits.to_string())
            } else {
                Err(invalid())
            }
        }
        "transaction_isolation" | "default_transaction_isolation" => {
            let level = value.trim().to_ascii_lowercase().replace('_', " ");
            match level.as_str() {
                "read uncommitted" | "read committed" | "repeatable read" | "serializable" => {
                    Ok(level)
                }
                _ => Err(invalid()),
            }
        }
        _ => Ok(value.to_string()),
    }
}

/// PostgreSQL duration text (`5s`, `250ms`, `1min`, `2h`, bare milliseconds) → ms.
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let value = value.trim().trim_matches('\'');
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" | "sec" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

fn format_duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An IANA zone name such as `Asia/Shanghai` (checked by shape; DataFusion
/// validates it when it is used).
fn is_iana_name(tz: &str) -> bool {
    !tz.is_empty()
        && tz.len() < 64
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        && tz.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// Fixed offsets such as `+08:00`.
mod chrono_tz_like {
    pub struct Offset;

    impl std::str::FromStr for Offset {
        type Err = ();

        fn from_str(s: &str) -> Result<Self, Self::Err> {
            let s = s.trim();
            let rest = s
                .strip_prefix('+')
                .or_else(|| s.strip_prefix('-'))
                .ok_or(())?;
            let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
            let hours: u32 = hours.parse().map_err(|_| ())?;
            let minutes: u32 = minutes.parse().map_err(|_| ())?;
            (hours <= 15 && minutes < 60).then_some(Offset).ok_or(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_set_show_and_reset() {
        let s = Settings::new(&[("application_name".into(), "psql".into())], "analyst");
        assert_eq!(s.get("application_name").unwrap(), "psql");
        assert_eq!(s.get("server_version").unwrap(), SERVER_VERSION);
        assert_eq!(s.get("session_authorization").unwrap(), "analyst");
        assert_eq!(s.get("DATESTYLE").unwrap(), "ISO, MDY");
        assert_eq!(
            s.set("TimeZone", "Asia/Shanghai").unwrap(),
            Some("TimeZone")
        );
        assert_eq!(s.get("timezone").unwrap(), "Asia/Shanghai");
        assert_eq!(s.get("time zone").unwrap(), "Asia/Shanghai");
        assert_eq!(s.reset("TimeZone").unwrap(), Some("TimeZone"));
        assert_eq!(s.get("TimeZone").unwrap(), "UTC");
        assert_eq!(s.set("statement_timeout", "5s").unwrap(), None);
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(s.get("statement_timeout").unwrap(), "5s");
        s.set("statement_timeout", "1500").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "1500ms");
        assert!(matches!(
            s.set("server_version", "9"),
            Err(SettingError::ReadOnly(_))
        ));
        assert!(s.set("server_version", SERVER_VERSION).is_ok());
        assert!(matches!(
            s.set("no_such_thing", "1"),
            Err(SettingError::Unknown(_))
        ));
        assert!(s.set("myapp.flag", "x").is_ok());
        assert_eq!(s.get("myapp.flag").unwrap(), "x");
        assert!(matches!(
            s.set("extra_float_digits", "9"),
            Err(SettingError::InvalidValue { .. })
        ));
        let changed = s.reset_all();
        assert!(changed.is_empty() || changed.contains(&"application_name"));
        assert_eq!(s.get("application_name").unwrap(), "");
        assert!(s.get("myapp.flag").is_err());
        assert_eq!(s.get("session_authorization").unwrap(), "analyst");
    }

    #[test]
    fn search_path_and_durations() {
        let s = Settings::default();
        assert_eq!(s.search_path(), vec!["public"]);
        s.set("search_path", "generator, public").unwrap();
        assert_eq!(s.search_path(), vec!["generator", "public"]);
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("2min"), Some(120_000));
        assert_eq!(parse_duration_ms("abc"), None);
        assert!(s.set("TimeZone", "+08:00").is_ok());
        assert!(s.set("TimeZone", "no such; zone").is_err());
    }
}
