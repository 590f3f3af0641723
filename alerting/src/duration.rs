//! Prometheus durations: `30s`, `5m`, `1h30m`, `6h`, `2d`.

use std::fmt;
use std::str::FromStr;

/// A duration as rules write it, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(u64);

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
    ("w", 604_800),
];

impl Dur {
    /// `seconds` seconds.
    #[must_use]
    pub const fn secs(seconds: u64) -> Self {
        Self(seconds)
    }

    /// `minutes` minutes.
    #[must_use]
    pub const fn mins(minutes: u64) -> Self {
        Self(minutes * 60)
    }

    /// `hours` hours.
    #[must_use]
    pub const fn hours(hours: u64) -> Self {
        Self(hours * 3_600)
    }

    /// The duration in seconds.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// The duration in milliseconds, the unit of sample timestamps.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        // Durations come from rules and flags: far below 2^53 ms.
        #[allow(clippy::cast_possible_wrap)]
        let ms = (self.0 * 1_000) as i64;
        ms
    }
}

impl fmt::Display for Dur {
    /// The shortest Prometheus spelling: `90s` is `1m30s`, `3600s` is `1h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// Why a duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadDuration(pub String);

impl fmt::Display for BadDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a duration: write whole units, largest first, such as `30s`, `5m`, `1h30m`, `6h` or `2d`",
            self.0
        )
    }
}

impl std::error::Error for BadDuration {}

impl FromStr for Dur {
    type Err = BadDuration;

    fn from_str(text: &str) -> Result<Self, BadDuration> {
        let bad = || BadDuration(text.to_owned());
        let mut rest = text;
        let mut total: u64 = 0;
        let mut last_size = u64::MAX;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let (unit, size) = UNITS
                .iter()
                .find(|(unit, _)| rest.starts_with(unit))
                .ok_or_else(bad)?;
            // `ms` is a unit Prometheus knows, and finer than rules need.
            if rest.starts_with("ms") || *size >= last_size {
                return Err(bad());
            }
            last_size = *size;
            rest = &rest[unit.len()..];
            total = number
                .checked_mul(*size)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(bad)?;
        }
        if total == 0 {
            return Err(bad());
        }
        Ok(Self(total))
    }
}

#[cfg(test)]
mod tests {
    use super::Dur;

    #[test]
    fn durations_read_and_print_the_prometheus_way() {
        for (text, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("1h30m", 5_400),
            ("6h", 21_600),
            ("2d", 172_800),
        ] {
            let dur: Dur = text.parse().unwrap();
            assert_eq!(dur.as_secs(), secs);
            assert_eq!(dur.to_string(), text);
        }
        assert_eq!(Dur::secs(90).to_string(), "1m30s");
        for bad in [
            "", "5", "m", "5x", "-5m", "5m1h", "5m5m", "0s", "1.5m", "100ms",
        ] {
            assert!(bad.parse::<Dur>().is_err(), "{bad}");
        }
    }
}
