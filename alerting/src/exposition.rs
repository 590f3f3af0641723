//! The Prometheus text exposition format, read into samples.

use crate::eval::{Labels, NAME};

/// Reads a `/metrics` page: every sample line as its labels (the metric
/// name under `__name__`) and value. Comments, `# HELP` and `# TYPE` lines
/// and timestamps are skipped.
///
/// # Errors
///
/// A line that is not a sample, with its number.
pub fn parse(page: &str) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::new();
    for (number, line) in page.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample =
            sample(line).ok_or_else(|| format!("line {}: not a sample: {line}", number + 1))?;
        out.push(sample);
    }
    Ok(out)
}

fn sample(line: &str) -> Option<(Labels, f64)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let mut labels = Labels::new();
    labels.insert(NAME.to_owned(), line[..name_end].to_owned());
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let (pairs, after) = label_pairs(inner)?;
        labels.extend(pairs);
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    Some((labels, crate::exposition::float(value)?))
}

/// `k="v",k2="v2"}` → the pairs and what follows the `}`.
pub(crate) fn label_pairs(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut pairs = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((pairs, after));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_owned();
        text = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        pairs.push((key, value));
        text = &text[end + 1..];
    }
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`, in Go's or Rust's spelling.
pub(crate) fn float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact figures")]
mod tests {
    use super::*;

    #[test]
    fn reads_the_exporter_page() {
        let page = "# TYPE selftime_internal_seconds histogram\n\
                    selftime_internal_seconds_bucket{handler=\"GET /a/{id}\",le=\"0.0001\"} 3\n\
                    selftime_internal_seconds_bucket{handler=\"x \\\"q\\\"\",le=\"+Inf\"} 7\n\
                    selftime_requests_total 12 1700000000000\n";
        let samples = parse(page).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].0["handler"], "GET /a/{id}");
        assert_eq!(samples[0].0["le"], "0.0001");
        assert_eq!(samples[1].0["handler"], "x \"q\"");
        assert_eq!(samples[2].1, 12.0);
        assert!(parse("what is this").is_err());
    }
}
