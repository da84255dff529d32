//! Tests of `work`.
