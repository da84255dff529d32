//! Tests of `generated`.
