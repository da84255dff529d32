//! Tests of `emit`.
