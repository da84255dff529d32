//! One reader of JSON Lines input for `emit --stdin` and `replay --file`.
//!
//! Input comes from other programs and files of any provenance, so one bad line must never
//! stop the others: a line that is not UTF-8, not JSON or not a valid event becomes an error
//! for that line alone, reported with its number, and reading goes on. Lines are read as
//! bytes and decoded one by one for that reason (`BufRead::lines` fails the whole read on
//! the first invalid byte). Only an I/O error ends the input.

use std::io::{self, BufRead};

use crate::catalog::{BadLine, Catalog};
use crate::event::Event;

/// One non-blank input line: its 1-based number, and the event or why it is rejected.
#[derive(Debug)]
pub struct Line {
    pub number: usize,
    pub event: Result<Event, LineError>,
}

/// Why one input line is rejected. The message is safe to print: control characters are
/// escaped.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// `at` is the 1-based byte of the line where UTF-8 breaks.
    #[error("not valid UTF-8 (the first bad byte is byte {at} of the line)")]
    NotUtf8 { at: usize },
    #[error(transparent)]
    Invalid(#[from] BadLine),
}

/// Reads `input` as JSON Lines, each validated against `catalog`. Blank lines (also
/// whitespace only) are skipped; a trailing `\r` is dropped, so CRLF files read as LF.
pub fn read_events<R: BufRead>(input: R, catalog: &Catalog) -> Events<'_, R> {
    Events {
        input,
        catalog,
        number: 0,
        buf: Vec::new(),
    }
}

/// The iterator of [`read_events`].
pub struct Events<'a, R> {
    input: R,
    catalog: &'a Catalog,
    number: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> Iterator for Events<'_, R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<io::Result<Line>> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            }
            self.number += 1;
            let mut bytes = self.buf.as_slice();
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let event = match std::str::from_utf8(bytes) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => self.catalog.parse_line(text).map_err(LineError::from),
                Err(e) => Err(LineError::NotUtf8 {
                    at: e.valid_up_to() + 1,
                }),
            };
            return Some(Ok(Line {
                number: self.number,
                event,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(input: &[u8]) -> Vec<(usize, Result<String, LineError>)> {
        read_events(input, &Catalog::builtin())
            .map(|line| {
                let line = line.unwrap();
                (line.number, line.event.map(|e| e.kind))
            })
            .collect()
    }

    #[test]
    fn a_line_that_is_not_utf8_is_one_rejected_line() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"type\":\"user.signup\",\"payload\":{\"email\":\"a@b\"}}\n");
        input.extend_from_slice(
            b"{\"type\":\"user.signup\",\"payload\":{\"email\":\"\xff\xfe\"}}\n",
        );
        input.extend_from_slice(b"\r\n   \n");
        input.extend_from_slice(b"{\"type\":\"user.signup\",\"payload\":{\"email\":\"c@d\"}}\r\n");
        input.extend_from_slice(b"{\"type\":\"user.signup\",\"payload\":{\"email\":\"e@f\"}}");
        let lines = read(&input);
        let numbers: Vec<usize> = lines.iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, [1, 2, 5, 6]);
        for (_, kind) in lines.iter().filter(|(number, _)| *number != 2) {
            assert_eq!(kind.as_ref().unwrap(), "user.signup");
        }
        let Err(error) = &lines[1].1 else {
            panic!("{lines:?}")
        };
        assert!(matches!(error, LineError::NotUtf8 { at: 43 }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "not valid UTF-8 (the first bad byte is byte 43 of the line)"
        );
    }

    #[test]
    fn rejections_never_echo_control_characters() {
        let lines = read(b"{\"type\":\"user.signup\",\"payload\":{},\"x\\u001b[2K\":1}\n");
        let Err(error) = &lines[0].1 else {
            panic!("{lines:?}")
        };
        assert!(
            matches!(error, LineError::Invalid(BadLine::NotEvent(_))),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("x\\u{1b}[2K"), "{message}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes_give_one_result_per_non_blank_line(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)
        ) {
            let lines: Vec<Vec<u8>> = lines
                .into_iter()
                .map(|l| l.into_iter().filter(|&b| b != b'\n').collect())
                .collect();
            let input = lines.join(&b'\n');
            let got = read(&input);
            let non_blank = lines
                .iter()
                .filter(|l| !std::str::from_utf8(l).is_ok_and(|t| t.trim().is_empty()))
                .count();
            prop_assert_eq!(got.len(), non_blank);
            for (_, result) in got {
                if let Err(error) = result {
                    let message = error.to_string();
                    prop_assert!(!message.is_empty());
                    prop_assert!(!message.chars().any(crate::sanitize::is_unsafe), "{:?}", message);
                }
            }
        }
    }
}
