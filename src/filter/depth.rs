//! How deep a `when` can nest, measured before the CEL parser sees it.
//!
//! The scan reads CEL's tokens (strings, bytes, raw strings and comments are
//! skipped as the CEL lexer skips them) and bounds the depth of the tree the
//! parser would build: each bracket, parenthesis or brace opens a level; in
//! each level, every operator, `.field` and `[index]` between two commas,
//! colons, `?`, `&&` or `||` adds one; a run of `&&` and `||` adds only as
//! much as the balanced tree CEL builds for it; each `?` adds one. The bound
//! is never below the real depth, so an expression within it parses and
//! evaluates in a bounded stack.

/// The deepest a `when` may nest, by the measure above.
pub const MAX_DEPTH: usize = 32;

/// The longest a `when` may be, in bytes.
pub const MAX_LEN: usize = 8192;

/// Why [`check`] refuses an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepthError {
    #[error("CEL expression is {len} bytes long, more than the {MAX_LEN} allowed")]
    TooLong { len: usize },
    #[error(
        "CEL expression nests {depth} deep, more than the {MAX_DEPTH} allowed \
         (each bracket, operator and .field counts one level)"
    )]
    TooDeep { depth: usize },
    #[error("CEL expression at {at}: unbalanced '{bracket}'")]
    Unbalanced { at: Position, bracket: char },
    #[error("CEL expression at {at}: unterminated string")]
    Unterminated { at: Position },
    #[error("CEL expression at {at}: invalid escape in a string")]
    BadEscape { at: Position },
}

/// A place in an expression, shown `line:column` as CEL's errors count
/// them (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Refuses `source` when it is longer than [`MAX_LEN`], nests deeper than
/// [`MAX_DEPTH`], or holds a string or bracket the scan cannot follow (CEL
/// refuses those too).
pub fn check(source: &str) -> Result<(), DepthError> {
    if source.len() > MAX_LEN {
        return Err(DepthError::TooLong { len: source.len() });
    }
    let depth = measure(source.as_bytes())?;
    if depth > MAX_DEPTH {
        return Err(DepthError::TooDeep { depth });
    }
    Ok(())
}

/// One bracketed level being scanned (the whole expression is the outermost).
#[derive(Default)]
struct Level {
    /// The bracket that closes it; 0 for the whole expression.
    close: u8,
    /// `&&` and `||` seen in it: CEL builds a balanced tree of each.
    logic: [usize; 2],
    /// `?` seen in it: each nests the rest of a conditional one deeper.
    questions: usize,
    /// Operators in the operand being read.
    ops: usize,
    /// The deepest level closed within the operand being read.
    inner: usize,
    /// The deepest operand read so far.
    deepest: usize,
}

impl Level {
    /// Ends the operand being read (at a comma, colon, `?`, `&&` or `||`).
    fn split(&mut self) {
        self.deepest = self.deepest.max(self.ops + self.inner);
        self.ops = 0;
        self.inner = 0;
    }

    /// The bound on how many levels its contents nest, once read to its end.
    fn depth(mut self) -> usize {
        self.split();
        let balanced = |n: usize| (usize::BITS - n.leading_zeros()) as usize;
        self.questions + balanced(self.logic[0]) + balanced(self.logic[1]) + self.deepest
    }
}

/// The bound on the depth of `source`'s tree.
fn measure(source: &[u8]) -> Result<usize, DepthError> {
    let mut scan = Scan {
        source,
        at: 0,
        levels: vec![Level::default()],
        operand: false,
    };
    while scan.at < source.len() {
        scan.token()?;
    }
    let mut depth = None;
    for mut level in scan.levels.into_iter().rev() {
        if let Some(inner) = depth {
            level.inner = level.inner.max(1 + inner);
        }
        depth = Some(level.depth());
    }
    Ok(depth.unwrap_or_default())
}

/// The scan's place in the expression.
struct Scan<'a> {
    source: &'a [u8],
    at: usize,
    /// The levels open, the whole expression first.
    levels: Vec<Level>,
    /// Whether the last token ended an operand, so that a `[` after it is an
    /// index (one more link in a chain, like `.field`) rather than a list.
    operand: bool,
}

impl Scan<'_> {
    fn level(&mut self) -> &mut Level {
        self.levels.last_mut().expect("the outermost level stays")
    }

    /// Reads the token at `at` and moves past it.
    fn token(&mut self) -> Result<(), DepthError> {
        let source = self.source;
        let c = source[self.at];
        let pair = source.get(self.at..self.at + 2).unwrap_or_default();
        let (operand, len) = match c {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => (self.operand, 1),
            _ if pair == b"//" => {
                let line = source[self.at..].iter().position(|&b| b == b'\n');
                (self.operand, line.unwrap_or(source.len() - self.at))
            }
            _ if pair == b"&&" || pair == b"||" => {
                let level = self.level();
                level.logic[usize::from(c == b'|')] += 1;
                level.split();
                (false, 2)
            }
            b',' | b':' | b'?' => {
                let level = self.level();
                level.questions += usize::from(c == b'?');
                level.split();
                (false, 1)
            }
            b'(' | b'[' | b'{' => {
                let operand = self.operand;
                self.level().ops += usize::from(operand && c == b'[');
                let close = match c {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                self.levels.push(Level {
                    close,
                    ..Level::default()
                });
                (false, 1)
            }
            b')' | b']' | b'}' => {
                if self.levels.len() == 1 || self.level().close != c {
                    return Err(DepthError::Unbalanced {
                        at: position(source, self.at),
                        bracket: c as char,
                    });
                }
                let inner = 1 + self.levels.pop().expect("a bracketed level").depth();
                let outer = self.level();
                outer.inner = outer.inner.max(inner);
                (true, 1)
            }
            b'"' | b'\'' => (true, string(source, self.at, false)? - self.at),
            b'`' => (true, quoted_name(&source[self.at..])),
            b'0'..=b'9' => (true, number(source, self.at) - self.at),
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => self.word()?,
            _ => {
                self.level().ops += 1;
                let two = [b"==", b"!=", b"<=", b">="].contains(&pair.try_into().unwrap_or(b".."));
                (false, 1 + usize::from(two))
            }
        };
        self.operand = operand;
        self.at += len;
        Ok(())
    }

    /// Reads an identifier, the `in` operator, or a string's prefix and the
    /// string: whether it ends an operand, and its length.
    fn word(&mut self) -> Result<(bool, usize), DepthError> {
        let (source, at) = (self.source, self.at);
        let end = at
            + source[at..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .unwrap_or(source.len() - at);
        let string_end = match (&source[at..end], source.get(end)) {
            (b"r" | b"R" | b"br" | b"bR" | b"Br" | b"BR", Some(b'"' | b'\'')) => {
                string(source, end, true)?
            }
            (b"b" | b"B", Some(b'"' | b'\'')) => string(source, end, false)?,
            (b"in", _) => {
                self.level().ops += 1;
                return Ok((false, 2));
            }
            _ => end,
        };
        Ok((true, string_end - at))
    }
}

/// The length of the name quoted in backticks at the start of `rest`
/// (``payload.`user-id` ``), or 1 when CEL would not read one there: its `//`
/// is no comment.
fn quoted_name(rest: &[u8]) -> usize {
    let name = rest[1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_.-/ ".contains(b))
        .count();
    if name > 0 && rest.get(1 + name) == Some(&b'`') {
        name + 2
    } else {
        1
    }
}

/// Where a number starting at `at` ends: digits, hex digits after `0x`, a
/// fraction, an exponent and a `u` suffix, as CEL's lexer reads them.
fn number(source: &[u8], at: usize) -> usize {
    let digits = |from: usize, hex: bool| {
        from + source[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit()))
            .count()
    };
    let is_digit = |i: usize| source.get(i).is_some_and(u8::is_ascii_digit);
    if source[at..].starts_with(b"0x") && source.get(at + 2).is_some_and(u8::is_ascii_hexdigit) {
        let end = digits(at + 2, true);
        return end + usize::from(matches!(source.get(end), Some(b'u' | b'U')));
    }
    let mut end = digits(at, false);
    let mut float = false;
    if source.get(end) == Some(&b'.') && is_digit(end + 1) {
        end = digits(end + 1, false);
        float = true;
    }
    if matches!(source.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(source.get(end + 1), Some(b'+' | b'-')));
        if is_digit(end + 1 + sign) {
            return digits(end + 1 + sign, false);
        }
    }
    end + usize::from(!float && matches!(source.get(end), Some(b'u' | b'U')))
}

/// Where the string literal whose quote is at `at` ends (just past its
/// closing quote). One CEL's lexer would not read whole is refused, so the
/// scan never mistakes code for a string's text.
fn string(source: &[u8], at: usize, raw: bool) -> Result<usize, DepthError> {
    let quote = source[at];
    let triple = source[at..].starts_with(&[quote; 3]) && {
        // `""` followed by a third quote opens a triple-quoted string only
        // when one closes it; otherwise CEL reads the empty string.
        let body = at + 3;
        source.len() > body && find(&source[body..], &[quote; 3]).is_some()
    };
    let (mut i, closing): (usize, &[u8]) = if triple {
        (at + 3, &[quote; 3][..])
    } else {
        (at + 1, std::slice::from_ref(&source[at]))
    };
    let unterminated = || DepthError::Unterminated {
        at: position(source, at),
    };
    loop {
        let rest = source
            .get(i..)
            .filter(|r| !r.is_empty())
            .ok_or_else(unterminated)?;
        if rest.starts_with(closing) {
            return Ok(i + closing.len());
        }
        match rest[0] {
            b'\n' | b'\r' if !triple => return Err(unterminated()),
            b'\\' if !raw => {
                i += escape(rest).ok_or_else(|| DepthError::BadEscape {
                    at: position(source, i),
                })?;
            }
            _ => i += 1,
        }
    }
}

/// The length of the escape sequence at the start of `rest` (a backslash
/// and what follows), if CEL knows it.
fn escape(rest: &[u8]) -> Option<usize> {
    let hex = |n: usize| {
        rest.get(2..2 + n)
            .filter(|d| d.len() == n && d.iter().all(u8::is_ascii_hexdigit))
            .map(|_| 2 + n)
    };
    match rest.get(1)? {
        b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'"' | b'\'' | b'\\' | b'?' | b'`' => {
            Some(2)
        }
        b'x' | b'X' => hex(2),
        b'u' => hex(4),
        b'U' => hex(8),
        b'0'..=b'3' => rest
            .get(2..4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|_| 4),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The position of byte `at`.
fn position(source: &[u8], at: usize) -> Position {
    let before = &source[..at];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = 1 + String::from_utf8_lossy(&before[start..]).chars().count();
    Position { line, column }
}
