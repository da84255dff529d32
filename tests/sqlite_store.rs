//! Tests of `sqlite_store`.
