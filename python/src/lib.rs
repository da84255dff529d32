//! `product_events._core`: the `events` library's emitter for Python. Every
//! call converts its arguments while holding the GIL, then releases it for
//! validation and the queue's round trip. The Python layer (`product_events`)
//! adds the logger, the enum and asyncio.

use std::sync::Mutex;
use std::time::Duration;

use events::catalog::ValidationError;
use events::config::Global;
use events::emitter::IDEMPOTENCY_TTL;
use events::queue::QueueError;
use events::queue::postgres::outbox::{self, EventRow, Param};
use events::setup::Setup;
use events::{Catalog, Error, Event, Style};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

/// An emit's connect and reply timeout from Python when
/// `EVENTS_EMIT_TIMEOUT_MS` is unset: a web request must never wait on it.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// Idle queue connections kept for the next call. Threads beyond it still
/// emit, each on a connection of its own, closed afterwards.
const MAX_IDLE: usize = 16;
/// Events written per batch by `emit_many`, as `events emit --stdin`.
const BATCH: usize = 1000;
/// How deep a payload may nest: deeper is refused rather than overflowing
/// the stack.
const MAX_DEPTH: usize = 128;

/// An event's row for `emit(…, connection=)`: id, SQL, parameters, the SQL
/// that finds a key's first event, the SQL that checks the schema.
type OutboxRow<'py> = (
    String,
    Option<String>,
    Bound<'py, PyDict>,
    Option<String>,
    Option<String>,
);

/// One emitter shared by every thread. The library's emitter holds one
/// queue connection and needs `&mut` for each call (a Redis connection
/// carries one request at a time), so a call takes an idle one from the
/// pool, or makes one, and puts it back: threads never wait on each other's
/// round trips, and the pool grows to the number of threads that emit at
/// once.
#[pyclass(frozen, module = "product_events._core")]
struct Emitter {
    setup: Setup,
    catalog: Catalog,
    timeout: Duration,
    idle: Mutex<Vec<events::Emitter>>,
}

#[pymethods]
impl Emitter {
    /// The emitter the environment and the config file describe, as for
    /// `events emit`.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Emitter> {
        let setup = py
            .detach(|| Setup::load(&Global::default()))
            .map_err(|e| raise(py, Error::Config(e)))?;
        let timeout = setup.store.emit_timeout.unwrap_or(DEFAULT_TIMEOUT);
        Ok(Emitter {
            catalog: setup.catalog.clone(),
            setup,
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Validates and writes one event; returns its id.
    #[pyo3(signature = (kind, payload, idempotency_key=None))]
    fn emit(
        &self,
        py: Python<'_>,
        kind: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<String> {
        let event = event(kind, payload).map_err(|e| raise(py, e.into()))?;
        py.detach(|| {
            self.with_emitter(|emitter| match &idempotency_key {
                Some(key) => emitter.emit_idempotent(key, event),
                None => emitter.emit_event(event),
            })
        })
        .map_err(|e| raise(py, e))
    }

    /// What `emit(…, connection=)` runs on the caller's connection: the
    /// event validated as `emit` does and its row, as `(id, sql, params,
    /// find_sql, ready_sql)` with `%(name)s` placeholders. `find_sql`
    /// (with a key) reads the first event's id when `sql` wrote nothing;
    /// `ready_sql` tells whether the schema exists. With `EVENTS_DISABLED`,
    /// `sql` is `None`: nothing is to be written.
    #[pyo3(signature = (kind, payload, idempotency_key=None))]
    fn outbox<'py>(
        &self,
        py: Python<'py>,
        kind: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<OutboxRow<'py>> {
        let event = event(kind, payload).map_err(|e| raise(py, e.into()))?;
        let key = idempotency_key.as_deref();
        let schema = self
            .with_emitter(|emitter| Ok(emitter.outbox_schema(key, &event)?.map(str::to_owned)))
            .map_err(|e| raise(py, e))?;
        let params = PyDict::new(py);
        let Some(schema) = schema else {
            return Ok((event.id, None, params, None, None));
        };
        let row = EventRow::new(&event, key, IDEMPOTENCY_TTL, events::event::now_ms());
        for (name, value) in row.params() {
            match value {
                Param::Text(text) => params.set_item(name, text)?,
                Param::Int(number) => params.set_item(name, number)?,
            }
        }
        let find = key.map(|_| outbox::FIND_KEY.named(&schema));
        let sql = row.statement().named(&schema);
        let ready = outbox::READY.named(&schema);
        Ok((event.id.clone(), Some(sql), params, find, Some(ready)))
    }

    /// Validates `(type, payload)` pairs and writes the valid ones in
    /// batches. Returns the ids (`None` for an invalid item) and, for each
    /// invalid item, its index and why; with `strict`, the first invalid
    /// item raises before anything is written.
    #[allow(clippy::type_complexity)]
    fn emit_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        strict: bool,
    ) -> PyResult<(Vec<Option<String>>, Vec<(usize, String)>)> {
        let mut events = Vec::new();
        let mut ids = Vec::new();
        let mut rejected = Vec::new();
        for (index, item) in items.try_iter()?.enumerate() {
            let checked = pair(&item?).and_then(|(kind, payload)| {
                let event = event(&kind, &payload)?;
                self.catalog.validate_event(&event)?;
                Ok(event)
            });
            match checked {
                Ok(event) => {
                    ids.push(Some(event.id.clone()));
                    events.push(event);
                }
                Err(e) if strict => {
                    let message = format!("item {index}: {e}");
                    return Err(raise(py, ValidationError::Invalid(message).into()));
                }
                Err(e) => {
                    ids.push(None);
                    rejected.push((index, e.to_string()));
                }
            }
        }
        py.detach(|| self.write_batches(&events))
            .map_err(|e| raise(py, e))?;
        Ok((ids, rejected))
    }

    /// The message of an event as the console shows it (Slack's is the same
    /// text, escaped); raises `InvalidEvent` for an invalid event.
    fn render(
        &self,
        py: Python<'_>,
        kind: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let event = event(kind, payload).map_err(|e| raise(py, e.into()))?;
        py.detach(|| events::render(&self.catalog, &event, Style::Plain))
            .map_err(|e| raise(py, e))
    }

    /// Whether `EVENTS_DISABLED` is set: events are validated, never written.
    #[getter]
    fn disabled(&self) -> bool {
        self.setup.disabled
    }

    /// The connect and reply timeout, in milliseconds.
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis() as u64
    }

    /// Where events go, without any password: `redis redis://***@host:6379`.
    #[getter]
    fn backend(&self) -> String {
        self.setup.backend().to_string()
    }

    /// Every event type this emitter accepts: the built-in catalog and the
    /// config file's.
    #[getter]
    fn types(&self) -> Vec<String> {
        self.catalog.iter().map(|spec| spec.name.clone()).collect()
    }

    /// How many queue connections wait idle for the next call.
    #[getter]
    fn idle_connections(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

impl Emitter {
    /// Runs `f` on an idle emitter, or a new one, and keeps it for the next
    /// call. Called without the GIL.
    fn with_emitter<T>(
        &self,
        f: impl FnOnce(&mut events::Emitter) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut emitter = match taken {
            Some(emitter) => emitter,
            None => {
                let mut emitter = events::Emitter::new(self.setup.clone())?;
                emitter.set_timeout(self.timeout);
                emitter
            }
        };
        let result = f(&mut emitter);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(emitter);
        }
        result
    }

    fn write_batches(&self, events: &[Event]) -> Result<(), Error> {
        let mut written = 0;
        for batch in events.chunks(BATCH) {
            self.with_emitter(|emitter| emitter.emit_batch(batch))
                .map_err(|e| match e {
                    Error::Queue(QueueError::Unavailable { reason, message }) if written > 0 => {
                        QueueError::unavailable(
                            reason,
                            format!("{message} (the first {written} events were written)"),
                        )
                        .into()
                    }
                    e => e,
                })?;
            written += batch.len();
        }
        Ok(())
    }
}

/// The event `kind` names with `payload`, stamped now.
fn event(kind: &Bound<'_, PyAny>, payload: &Bound<'_, PyAny>) -> Result<Event, ValidationError> {
    let kind = type_name(kind)?;
    let Value::Object(payload) = json(payload, 0)? else {
        return Err(invalid(format!(
            "the payload must be a dict, not {}",
            type_of(payload)
        )));
    };
    Ok(Event::new(kind, payload))
}

/// One item of `emit_many`: a `(type, payload)` pair.
fn pair<'py>(
    item: &Bound<'py, PyAny>,
) -> Result<(Bound<'py, PyAny>, Bound<'py, PyAny>), ValidationError> {
    let pair = item
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            invalid(format!(
                "each item must be a (type, payload) pair, not {}",
                type_of(item)
            ))
        })?;
    Ok((
        pair.get_item(0).map_err(no_item)?,
        pair.get_item(1).map_err(no_item)?,
    ))
}

fn no_item(e: PyErr) -> ValidationError {
    invalid(e.to_string())
}

/// An event type given as a `str`, or as an enum member whose value is one
/// (`EventType.USER_SIGNUP`, or an application's own enum).
fn type_name(kind: &Bound<'_, PyAny>) -> Result<String, ValidationError> {
    let text = match kind.cast::<PyString>() {
        Ok(text) => text.clone(),
        Err(_) => kind
            .getattr("value")
            .ok()
            .and_then(|value| value.cast_into::<PyString>().ok())
            .ok_or_else(|| {
                invalid(format!(
                    "the event type must be a str or an EventType, not {}",
                    type_of(kind)
                ))
            })?,
    };
    text.to_str()
        .map(str::to_owned)
        .map_err(|_| invalid("the event type is not valid UTF-8".into()))
}

/// A Python value as JSON: `dict` (with `str` keys), `list`, `tuple`,
/// `str`, `int`, `float` (finite), `bool` and `None`. An `int` beyond 64
/// bits becomes a float, as the same number in `--json` would.
fn json(value: &Bound<'_, PyAny>, depth: usize) -> Result<Value, ValidationError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the payload nests deeper than {MAX_DEPTH} levels"
        )));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(text) = value.cast::<PyString>() {
        let text = text
            .to_str()
            .map_err(|_| invalid("a string in the payload is not valid UTF-8".into()))?;
        return Ok(Value::String(text.to_owned()));
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if let Ok(int) = value.cast::<PyInt>() {
        return Ok(integer(int));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let number = float.value();
        return Number::from_f64(number).map(Value::Number).ok_or_else(|| {
            invalid(format!(
                "the payload holds {number}, which is not a JSON number"
            ))
        });
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::with_capacity(dict.len());
        for (key, item) in dict.iter() {
            let key = key.cast::<PyString>().map_err(|_| {
                invalid(format!(
                    "payload keys must be strings, not {}",
                    type_of(&key)
                ))
            })?;
            let key = key
                .to_str()
                .map_err(|_| invalid("a key in the payload is not valid UTF-8".into()))?;
            map.insert(key.to_owned(), json(&item, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list.iter().map(|item| json(&item, depth + 1)).collect();
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple.iter().map(|item| json(&item, depth + 1)).collect();
    }
    Err(invalid(format!(
        "the payload holds a value of type {}, which is not JSON: \
         pass str, int, float, bool, None, list or dict",
        type_of(value)
    )))
}

/// An `int` as JSON: exact within 64 bits, else the nearest float.
fn integer(int: &Bound<'_, PyInt>) -> Value {
    if let Ok(n) = int.extract::<i64>() {
        return Value::from(n);
    }
    if let Ok(n) = int.extract::<u64>() {
        return Value::from(n);
    }
    let big: f64 = int.extract().unwrap_or(f64::INFINITY);
    Number::from_f64(big).map_or(Value::Null, Value::Number)
}

fn type_of(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "value".to_owned(), |name| name.to_string())
}

fn invalid(message: String) -> ValidationError {
    ValidationError::Invalid(message)
}

/// The Python exception for `error`, chosen by its kind (never its text):
/// invalid input is `InvalidEvent`, anything the queue reported is
/// `QueueUnavailable`, a bad setting is `EventsError`. Each carries
/// `event_id`: the id of an event written all the same (too few replicas
/// confirmed it), else `None`.
fn raise(py: Python<'_>, error: Error) -> PyErr {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let (name, written) = match &error {
        Error::Invalid(_) => ("InvalidEvent", None),
        Error::Queue(QueueError::NotReplicated(e)) => ("QueueUnavailable", e.id.clone()),
        Error::Queue(_) => ("QueueUnavailable", None),
        _ => ("EventsError", None),
    };
    let class = ERRORS
        .get_or_try_init(py, || {
            py.import("product_events._errors").map(Bound::unbind)
        })
        .and_then(|module| module.bind(py).getattr(name));
    let err = match class.and_then(|class| Ok(class.cast_into::<PyType>()?)) {
        Ok(class) => PyErr::from_type(class, error.to_string()),
        Err(e) => return e,
    };
    match err.value(py).setattr("event_id", written) {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// The built-in event types' names, for the Python enum to be checked
/// against.
#[pyfunction]
fn builtin_types() -> Vec<&'static str> {
    events::EventType::ALL.iter().map(|t| t.as_str()).collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Emitter>()?;
    m.add_function(wrap_pyfunction!(builtin_types, m)?)?;
    Ok(())
}
