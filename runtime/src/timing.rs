//! The W3C `Server-Timing` header, both ways: what a handler behind the
//! `tower` layer tells a caller it trusts, and what a client integration
//! reads of the dependency's own time.
//!
//! Reading is defensive: the header comes from another process, possibly
//! one nobody here controls. Only one value is used, the `dur` of the one
//! metric named [`TOTAL`]; a header that is too long, names it twice, gives
//! it two durations, or one that is not a finite, non-negative number of
//! milliseconds (below a day) is ignored as a whole, without an error.

use crate::report::SERVER_TIMING;
#[cfg(feature = "tower")]
use std::fmt::Write as _;

/// The handler's total so far, in milliseconds (`dur`).
const TOTAL: &str = SERVER_TIMING[0];
/// Its internal time so far.
#[cfg(feature = "tower")]
const INTERNAL: &str = SERVER_TIMING[1];
/// Its external time so far.
#[cfg(feature = "tower")]
const EXTERNAL: &str = SERVER_TIMING[2];
/// One dependency's time so far, named in `desc`.
#[cfg(feature = "tower")]
const DEPENDENCY: &str = SERVER_TIMING[3];

/// Longer headers (all `Server-Timing` lines together) are not read: a
/// dependency's honest header is a few metrics.
const MAX_LEN: usize = 4096;
/// A day, in milliseconds: a longer `dur` is not a request's.
const MAX_MS: f64 = 86_400_000.0;

#[cfg(feature = "tower")]
/// Writes the metrics of a handler's figures so far (nanoseconds), with
/// each dependency's time when `dependencies` gives them: `total;dur=12.3,
/// internal;dur=2.1, external;dur=10.2, dependency;desc="redis";dur=10.2`.
pub(crate) fn write(
    out: &mut String,
    total: u64,
    internal: u64,
    external: u64,
    dependencies: impl Iterator<Item = (&'static str, u64)>,
) {
    out.clear();
    for (i, (name, ns)) in [(TOTAL, total), (INTERNAL, internal), (EXTERNAL, external)]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        push_dur(out, ns);
    }
    for (name, ns) in dependencies {
        out.push_str(", ");
        out.push_str(DEPENDENCY);
        out.push_str(";desc=\"");
        for c in name.chars() {
            // A quoted-string of visible ASCII: escape `"` and `\`, and
            // stand in for anything a header value cannot hold.
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                _ => out.push('?'),
            }
        }
        out.push('"');
        push_dur(out, ns);
    }
}

#[cfg(feature = "tower")]
/// `;dur=<ms>` with microsecond precision.
fn push_dur(out: &mut String, ns: u64) {
    let us = ns / 1_000;
    // Writing to a `String` cannot fail.
    let _ = write!(out, ";dur={}.{:03}", us / 1_000, us % 1_000);
}

/// The callee's own time, in nanoseconds: the `dur` of its `total` metric,
/// if the header values (every `Server-Timing` line of a response) give one
/// and only one, well formed.
pub(crate) fn callee_total<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    let mut len = 0;
    let mut found = None;
    for value in values {
        len += value.len();
        if len > MAX_LEN {
            return None;
        }
        let value = std::str::from_utf8(value).ok()?;
        for metric in split_outside_quotes(value, ',') {
            let mut params = split_outside_quotes(metric, ';');
            let name = params.next().unwrap_or("").trim();
            if !name.eq_ignore_ascii_case(TOTAL) {
                continue;
            }
            if found.is_some() {
                // Named twice: which is the callee's?
                return None;
            }
            let mut dur = None;
            for param in params {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                if key.trim().eq_ignore_ascii_case("dur") {
                    if dur.is_some() {
                        return None;
                    }
                    dur = Some(value.trim());
                }
            }
            found = Some(millis(dur?)?);
        }
    }
    found
}

/// A `dur` value, plain or quoted, as nanoseconds.
fn millis(text: &str) -> Option<u64> {
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    // Digits and one point only: no sign, exponent, `inf` or `NaN`.
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let points = text.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || digits + points != text.len() || points > 1 {
        return None;
    }
    let ms: f64 = text.parse().ok()?;
    if !(0.0..MAX_MS).contains(&ms) {
        return None;
    }
    // Cannot truncate or lose the sign: below a day in nanoseconds.
    #[allow(clippy::cast_sign_loss)]
    Some((ms * 1_000_000.0).round() as u64)
}

/// `text` split at each `sep` that is not inside a quoted-string.
fn split_outside_quotes(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    rest = Some(&text[i + c.len_utf8()..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

#[cfg(test)]
mod tests {
    use super::callee_total;
    #[cfg(feature = "tower")]
    use super::write;

    fn read(lines: &[&str]) -> Option<u64> {
        callee_total(lines.iter().map(|l| l.as_bytes()))
    }

    #[cfg(feature = "tower")]
    #[test]
    fn what_a_handler_writes_reads_back() {
        let mut out = String::new();
        write(
            &mut out,
            12_345_678,
            2_000_000,
            10_345_678,
            [("redis", 10_345_678), ("we\"ird\\ name é", 1_000)].into_iter(),
        );
        assert_eq!(
            out,
            "total;dur=12.345, internal;dur=2.000, external;dur=10.345, \
             dependency;desc=\"redis\";dur=10.345, \
             dependency;desc=\"we\\\"ird\\\\ name ?\";dur=0.001"
        );
        assert_eq!(read(&[&out]), Some(12_345_000));
    }

    #[test]
    fn the_total_is_found_among_other_metrics_and_lines() {
        assert_eq!(read(&["total;dur=1.5"]), Some(1_500_000));
        assert_eq!(
            read(&["db;dur=3, TOTAL ; desc=\"a, b; c\" ; dur = 7"]),
            Some(7_000_000)
        );
        assert_eq!(
            read(&["cache;desc=hit", "total;dur=\"0.25\""]),
            Some(250_000)
        );
        assert_eq!(read(&["miss, db;dur=2"]), None);
        assert_eq!(read(&[]), None);
    }

    #[test]
    fn hostile_or_malformed_headers_are_ignored() {
        for bad in [
            "total",
            "total;dur",
            "total;dur=",
            "total;dur=-1",
            "total;dur=NaN",
            "total;dur=inf",
            "total;dur=1e3",
            "total;dur=1.2.3",
            "total;dur=+5",
            "total;dur=abc",
            "total;dur=100000000000",
            "total;dur=1;dur=2",
            "total;dur=1, total;dur=2",
            "total;desc=\"unterminated;dur=3",
        ] {
            assert_eq!(read(&[bad]), None, "{bad}");
        }
        assert_eq!(read(&["total;dur=1", "total;dur=1"]), None);
        let huge = format!("{}total;dur=1", "x;dur=1, ".repeat(1_000));
        assert_eq!(read(&[&huge]), None);
        assert_eq!(callee_total([&[0xff, 0xfe][..]].into_iter()), None);
    }
}
