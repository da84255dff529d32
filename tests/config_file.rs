//! Tests of `config_file`.
