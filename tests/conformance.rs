//! The queue conformance suite (being written).
