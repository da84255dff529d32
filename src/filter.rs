//! A destination's `when`: a CEL expression over an event's `type` and
//! `payload`, compiled once when the config loads and evaluated per event,
//! so one channel can take only the big ones.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cel::{Context, Env, Program, Value};

use crate::event::Event;

/// A compiled `when` expression.
#[derive(Clone)]
pub struct When {
    source: String,
    program: Arc<Program>,
    env: Arc<Env>,
    /// Set once a run-time failure has been reported, so a broken filter
    /// says so once rather than per event.
    reported: Arc<AtomicBool>,
}

/// What a `when` says of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The expression is true: the event goes to the destination.
    Wanted,
    /// The expression is false.
    Unwanted,
    /// The expression could not be evaluated (a missing field) or is not a
    /// boolean: the event goes nowhere by this route.
    Failed(String),
}

impl When {
    /// Compiles `source`; the error is the parser's first line, with the
    /// line and column within the expression.
    pub fn compile(source: &str) -> Result<When, String> {
        let program = Program::compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.trim_start_matches("ERROR: <input>:");
            format!("CEL expression at {}", first.trim())
        })?;
        Ok(When {
            source: source.to_owned(),
            program: Arc::new(program),
            env: Arc::new(Env::stdlib()),
            reported: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with `type` and `payload` bound to `event`'s.
    pub fn judge(&self, event: &Event) -> Verdict {
        let mut context = Context::with_env(Arc::clone(&self.env));
        context.add_variable_from_value("type", Value::from(event.kind.clone()));
        match cel::to_value(&event.payload) {
            Ok(payload) => context.add_variable_from_value("payload", payload),
            Err(e) => return Verdict::Failed(e.to_string()),
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(true)) => Verdict::Wanted,
            Ok(Value::Bool(false)) => Verdict::Unwanted,
            Ok(other) => Verdict::Failed(format!(
                "it gave {:?}, not true or false",
                other.type_of().to_string()
            )),
            Err(e) => Verdict::Failed(e.to_string()),
        }
    }

    /// True the first time it is called: whether a failure is still to be
    /// reported.
    pub fn first_failure(&self) -> bool {
        !self.reported.swap(true, Ordering::Relaxed)
    }
}

impl fmt::Debug for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("When").field(&self.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, payload: serde_json::Value) -> Event {
        Event {
            id: "evt_1".into(),
            kind: kind.into(),
            ts: "2026-01-01T00:00:00Z".into(),
            payload: payload.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn big_imports_on_paid_plans_are_wanted() {
        let when =
            When::compile(r#"payload.row_count >= 100000 && payload.plan in ["pro", "team"]"#)
                .unwrap();
        let judge = |rows: i64, plan: &str| {
            when.judge(&event(
                "import.completed",
                json!({"row_count": rows, "plan": plan}),
            ))
        };
        assert_eq!(judge(100_000, "pro"), Verdict::Wanted);
        assert_eq!(judge(250_000, "team"), Verdict::Wanted);
        assert_eq!(judge(99_999, "pro"), Verdict::Unwanted);
        assert_eq!(judge(500_000, "free"), Verdict::Unwanted);
    }

    #[test]
    fn the_type_is_bound_too() {
        let when = When::compile(r#"type.startsWith("billing.")"#).unwrap();
        assert_eq!(
            when.judge(&event("billing.failed", json!({}))),
            Verdict::Wanted
        );
        assert_eq!(
            when.judge(&event("user.signup", json!({}))),
            Verdict::Unwanted
        );
    }

    #[test]
    fn a_missing_field_or_a_non_boolean_fails() {
        let when = When::compile("payload.row_count > 10").unwrap();
        assert!(matches!(
            when.judge(&event("import.completed", json!({}))),
            Verdict::Failed(_)
        ));
        let when = When::compile("payload.row_count").unwrap();
        assert!(matches!(
            when.judge(&event("import.completed", json!({"row_count": 3}))),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn has_guards_an_optional_field() {
        let when = When::compile(r#"has(payload.plan) && payload.plan == "pro""#).unwrap();
        assert_eq!(
            when.judge(&event("user.signup", json!({}))),
            Verdict::Unwanted
        );
        assert_eq!(
            when.judge(&event("user.signup", json!({"plan": "pro"}))),
            Verdict::Wanted
        );
    }

    #[test]
    fn a_failure_is_reported_once() {
        let when = When::compile("payload.x").unwrap();
        let copy = when.clone();
        assert!(when.first_failure());
        assert!(!copy.first_failure());
    }

    #[test]
    fn a_syntax_error_is_an_error() {
        let err = When::compile("payload.row_count >=").unwrap_err();
        assert!(
            err.starts_with("CEL expression at 1:21: Syntax error: mismatched input '<EOF>'"),
            "{err}"
        );
        assert!(When::compile("payload.plan in [\"pro\"").is_err());
    }
}
