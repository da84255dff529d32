//! Tests of `webhook`.
