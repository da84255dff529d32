//! A destination's `when`: a CEL expression over an event's `type` and
//! `payload`, compiled once when the config loads and evaluated per event,
//! so one channel can take only the big ones.
//!
//! The CEL parser and interpreter recurse once per level of the expression's
//! tree, so an expression nested thousands deep (`payload.a.a.a…`, `((((…))))`)
//! would overflow the stack while the config loads or an event is judged.
//! Before it is parsed, an expression is measured by a scan of its tokens
//! that bounds how deep its tree can be, and refused beyond [`MAX_DEPTH`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cel::{Context, Env, Program, Value};

use crate::event::Event;

mod depth;

pub use depth::{DepthError, MAX_DEPTH, MAX_LEN, Position};

/// Why a `when` does not compile.
#[derive(Debug, thiserror::Error)]
pub enum WhenError {
    /// Too long, too deep, or a string or bracket the depth scan cannot follow.
    #[error(transparent)]
    Depth(#[from] DepthError),
    /// The CEL parser's first line: `line:column: what`.
    #[error("CEL expression at {0}")]
    Syntax(String),
    /// The thread the parser runs on could not be started.
    #[error("CEL expression not parsed: {0}")]
    Thread(std::io::Error),
    /// The parser panicked.
    #[error("CEL expression could not be parsed")]
    Panicked,
}

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
    pub fn compile(source: &str) -> Result<When, WhenError> {
        depth::check(source)?;
        let program = parse(source)?;
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
        let payload = event.payload.iter().map(|(k, v)| (k.clone(), value(v)));
        context.add_variable_from_value("payload", payload.collect::<HashMap<_, _>>());
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

/// `json` as CEL sees it, with the types an expression is written against:
/// an integer is an `int` (a `uint` only beyond `int`'s range), so that
/// `payload.row_count + 1` adds two ints; a fraction is a `double`.
fn value(json: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(value).collect())),
        Json::Object(fields) => {
            let fields = fields.iter().map(|(k, v)| (k.clone(), value(v)));
            Value::from(fields.collect::<HashMap<_, _>>())
        }
    }
}

/// Parses `source` on a thread of its own with a stack sized for the
/// deepest expression [`depth::check`] lets through, whatever the stack of
/// the thread loading the config.
fn parse(source: &str) -> Result<Program, WhenError> {
    let parse = || {
        Program::compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.trim_start_matches("ERROR: <input>:");
            WhenError::Syntax(first.trim().to_owned())
        })
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("when".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, parse)
            .map_err(WhenError::Thread)?
            .join()
            .map_err(|_| WhenError::Panicked)?
    })
}

/// The stack the parser gets: an unoptimised build takes about 200 KiB per
/// level of brackets, so [`MAX_DEPTH`] levels fit several times over.
const PARSE_STACK: usize = 64 << 20;

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
    fn integers_are_signed_as_a_python_or_js_user_expects() {
        let judge = |source: &str, rows: serde_json::Value| {
            let when = When::compile(source).unwrap();
            when.judge(&event("import.completed", json!({ "row_count": rows })))
        };
        assert_eq!(
            judge("payload.row_count + 1 > 5", json!(5)),
            Verdict::Wanted
        );
        assert_eq!(
            judge("payload.row_count + 1 > 5", json!(4)),
            Verdict::Unwanted
        );
        assert_eq!(
            judge("payload.row_count * 2 >= 10", json!(5)),
            Verdict::Wanted
        );
        assert_eq!(
            judge("payload.row_count - 10 < 0", json!(5)),
            Verdict::Wanted
        );
        assert_eq!(
            judge("payload.row_count - 10 < 0", json!(-3)),
            Verdict::Wanted
        );
        assert_eq!(
            judge("type(payload.row_count) == int", json!(5)),
            Verdict::Wanted
        );
        // Beyond i64, an integer is a uint; a fraction is a double.
        let max = json!(u64::MAX);
        assert_eq!(
            judge("payload.row_count == 18446744073709551615u", max),
            Verdict::Wanted
        );
        assert_eq!(
            judge("payload.row_count * 2.0 > 3.0", json!(1.6)),
            Verdict::Wanted
        );
        assert_eq!(
            judge("type(payload.row_count) == double", json!(2.5)),
            Verdict::Wanted
        );
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

    /// `payload.a.a…`, `((…))`, `[[…]]`, `{1: {1: …}}`, `size(size(…))`,
    /// `!!…`, `1 + 1 + …`, `a[0][0]…`: each shape `n` deep.
    fn shapes(n: usize) -> Vec<String> {
        vec![
            format!("payload{} == 1", ".a".repeat(n)),
            format!("{}1{} == 1", "(".repeat(n), ")".repeat(n)),
            format!("{}{} == []", "[".repeat(n), "]".repeat(n)),
            format!("{}1{} == 1", "{1: ".repeat(n), "}".repeat(n)),
            format!("{}payload{} == 1", "size(".repeat(n), ")".repeat(n)),
            format!("{}true", "!".repeat(n)),
            format!("1{} == 1", " + 1".repeat(n)),
            format!("payload{} == 1", "[0]".repeat(n)),
        ]
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_before_parsing() {
        for source in shapes(20_000) {
            let err = When::compile(&source).unwrap_err().to_string();
            assert!(err.contains("more than the 8192 allowed"), "{err}");
        }
        for source in shapes(1_000).iter().chain(&shapes(MAX_DEPTH + 1)) {
            let err = When::compile(source).unwrap_err().to_string();
            assert!(
                err.starts_with("CEL expression nests ") && err.contains("the 32 allowed"),
                "{source}: {err}"
            );
        }
        let long_or = vec![r#"type == "a""#; 500].join(" || ");
        assert!(
            When::compile(&long_or).is_ok(),
            "a flat || chain is shallow"
        );
    }

    #[test]
    fn nesting_just_within_the_limit_compiles_and_judges() {
        let deep = event("import.completed", json!({"a": 1}));
        for source in shapes(MAX_DEPTH - 2) {
            let when = When::compile(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
            let _ = when.judge(&deep);
        }
        let sum = When::compile(&format!("0{} == 30", " + 1".repeat(30))).unwrap();
        assert_eq!(sum.judge(&deep), Verdict::Wanted);
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let parens = "(".repeat(200);
        for source in [
            format!(r#"payload.note == "{parens}""#),
            format!("payload.note == '{parens}'"),
            format!(r#"payload.note == """{parens}""""#),
            format!(r#"payload.note == r"\" && payload.plan != "{parens}""#),
            format!(r"payload.note == 'it\'s {parens}'"),
            format!("type == \"a\" // {parens}\n&& true"),
        ] {
            assert!(When::compile(&source).is_ok(), "{source}");
        }
        // A quoted name is read as one token, `//` and all; CEL then says it
        // does not support them.
        let err = When::compile(&format!("payload.`a//b` == 1 && type != '{parens}'"));
        assert_eq!(
            err.unwrap_err().to_string(),
            "CEL expression at 1:8: unsupported syntax: '`'"
        );
    }

    #[test]
    fn a_string_the_scan_cannot_follow_is_refused() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        for source in [
            format!(r#"payload.note == "abc{deep}"#),
            format!(r#"payload.note == "\q" + {deep}"#),
            format!("payload.note == 'line\n{deep}'"),
            format!("payload.note == '''{deep}"),
        ] {
            let err = When::compile(&source).unwrap_err().to_string();
            assert!(err.starts_with("CEL expression at 1:"), "{source}: {err}");
        }
        let err = When::compile("(payload.a]").unwrap_err();
        let at = Position {
            line: 1,
            column: 11,
        };
        assert!(
            matches!(
                err,
                WhenError::Depth(DepthError::Unbalanced { at: a, bracket: ']' }) if a == at
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "CEL expression at 1:11: unbalanced ']'");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the text, compiling and judging return: no overflow, no
        /// panic.
        #[test]
        fn any_text_compiles_or_is_refused(source in cel_like()) {
            if let Ok(when) = When::compile(&source) {
                let _ = when.judge(&event("a.b", json!({"a": {"a": [1, 2]}, "x": 1})));
            }
        }
    }

    /// Text made of CEL's tokens, each repeated up to hundreds of times.
    fn cel_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let token = proptest::sample::select(vec![
            "(", ")", "[", "]", "{", "}", ".a", "!", "-", "+", "1", "1.5", "payload", "\"", "'",
            "r\"", "\\", "&&", "||", "?", ":", ",", "//", "\n", "`", " in ", " ", "==", "\"\"\"",
            "size(", ".all(x, ", "[0]", "é",
        ]);
        let run = (token, 1..600usize).prop_map(|(t, n)| t.repeat(n));
        let pair = proptest::sample::select(vec![
            ("(", ")"),
            ("[", "]"),
            ("{1: ", "}"),
            ("size(", ")"),
            ("payload.a", ".a"),
            ("!", ""),
            ("1 + ", ""),
            ("true ? 1 : ", ""),
            ("[1].all(x, ", ")"),
        ]);
        let nested = (pair, 1..3_000usize)
            .prop_map(|((open, close), n)| format!("{}1{} == 1", open.repeat(n), close.repeat(n)));
        prop_oneof![
            nested,
            proptest::collection::vec(run, 0..10).prop_map(|runs| runs.concat()),
            any::<String>(),
        ]
    }

    #[test]
    fn a_syntax_error_is_an_error() {
        let err = When::compile("payload.row_count >=")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("CEL expression at 1:21: Syntax error: mismatched input '<EOF>'"),
            "{err}"
        );
        assert!(When::compile("payload.plan in [\"pro\"").is_err());
    }
}
