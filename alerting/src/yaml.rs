//! YAML read into a tree that remembers where each scalar is in the text:
//! the rules file is read for its meaning and edited in place (the
//! generator rewrites a range or a `for:` where it stands, and nothing
//! else).

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a scalar's value is in the text, by line (0-based) and byte
/// column of its first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A node of a YAML document.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Scalar(Scalar),
    Sequence(Vec<Node>, At),
    Mapping(Vec<(Scalar, Node)>, At),
}

/// A scalar: its value and where it is.
#[derive(Clone, Debug)]
pub(crate) struct Scalar {
    pub(crate) value: String,
    pub(crate) style: ScalarStyle,
    pub(crate) at: At,
    /// The byte range of the scalar in the text, quotes or block header
    /// excluded.
    pub(crate) bytes: (usize, usize),
}

impl Node {
    pub(crate) fn at(&self) -> At {
        match self {
            Self::Scalar(s) => s.at,
            Self::Sequence(_, at) | Self::Mapping(_, at) => *at,
        }
    }

    /// What the node is, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Scalar(_) => "a scalar",
            Self::Sequence(..) => "a list",
            Self::Mapping(..) => "a mapping",
        }
    }
}

/// A YAML error, with the line (0-based) it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Byte offsets of the text's lines, to turn the parser's character
/// positions into byte positions.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// The byte offset of (line 0-based, column in characters).
    fn byte(&self, line: usize, column: usize) -> usize {
        let start = self.starts.get(line).copied().unwrap_or(self.text.len());
        let rest = &self.text[start..];
        start
            + rest
                .char_indices()
                .nth(column)
                .map_or(rest.len(), |(i, _)| i)
    }

    fn at(&self, line: usize, column: usize) -> At {
        let start = self.starts.get(line).copied().unwrap_or(self.text.len());
        At {
            line,
            column: self.byte(line, column) - start,
        }
    }
}

/// The first document of `text`. Anchors, aliases and tags are refused:
/// rules files have no use for them, and an edit in place could not see
/// through them.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let lines = Lines::new(text);
    let mut stack: Vec<Building> = Vec::new();
    let mut root: Option<Node> = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line().saturating_sub(1),
            message: e.info().to_owned(),
        })?;
        let line = span.start.line().saturating_sub(1);
        let refuse = |what: &str| {
            Err(YamlError {
                line,
                message: format!("{what} are not supported in rules files"),
            })
        };
        let node = match event {
            Event::Alias(_) => return refuse("aliases"),
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                return refuse("anchors");
            }
            Event::Scalar(_, _, _, Some(_))
            | Event::SequenceStart(_, Some(_))
            | Event::MappingStart(_, Some(_)) => return refuse("tags"),
            Event::Scalar(value, style, _, None) => Some(Node::Scalar(scalar(
                &lines,
                value.into_owned(),
                style,
                span,
            ))),
            Event::SequenceStart(..) => {
                stack.push(Building::Sequence(Vec::new(), position(&lines, span)));
                None
            }
            Event::MappingStart(..) => {
                stack.push(Building::Mapping(Vec::new(), None, position(&lines, span)));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(Building::finish),
            Event::DocumentEnd => break,
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => {
                None
            }
        };
        if let Some(node) = node {
            match stack.last_mut() {
                None => root = Some(node),
                Some(Building::Sequence(items, _)) => items.push(node),
                Some(Building::Mapping(pairs, key, _)) => match key.take() {
                    None => match node {
                        Node::Scalar(k) => *key = Some(k),
                        other => {
                            return Err(YamlError {
                                line: other.at().line,
                                message: format!("a key must be a scalar, not {}", other.kind()),
                            });
                        }
                    },
                    Some(k) => {
                        // As Prometheus's YAML reader: a key once per mapping.
                        if pairs.iter().any(|(seen, _)| seen.value == k.value) {
                            return Err(YamlError {
                                line: k.at.line,
                                message: format!("key `{}` is already set", k.value),
                            });
                        }
                        pairs.push((k, node));
                    }
                },
            }
        }
    }
    root.ok_or(YamlError {
        line: 0,
        message: "the file is empty".into(),
    })
}

enum Building {
    Sequence(Vec<Node>, At),
    Mapping(Vec<(Scalar, Node)>, Option<Scalar>, At),
}

impl Building {
    fn finish(self) -> Node {
        match self {
            Self::Sequence(items, at) => Node::Sequence(items, at),
            Self::Mapping(pairs, _, at) => Node::Mapping(pairs, at),
        }
    }
}

fn position(lines: &Lines<'_>, span: Span) -> At {
    lines.at(span.start.line().saturating_sub(1), span.start.col())
}

fn scalar(lines: &Lines<'_>, value: String, style: ScalarStyle, span: Span) -> Scalar {
    let start = lines.byte(span.start.line().saturating_sub(1), span.start.col());
    let end = lines.byte(span.end.line().saturating_sub(1), span.end.col());
    let (start, end) = match style {
        // The span covers the quotes.
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            (start + 1, end.saturating_sub(1).max(start + 1))
        }
        _ => (start, end),
    };
    Scalar {
        value,
        style,
        at: position(lines, span),
        bytes: (start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_know_where_they_are() {
        let text =
            "g:\n  - expr: |\n      sum(rate(x[5m]))\n      / 2\n    for: 10m\n    q: \"é0.25\"\n";
        let Node::Mapping(top, _) = parse(text).unwrap() else {
            panic!("a mapping")
        };
        let Node::Sequence(items, _) = &top[0].1 else {
            panic!("a list")
        };
        let Node::Mapping(rule, _) = &items[0] else {
            panic!("a mapping")
        };
        let (_, Node::Scalar(expr)) = &rule[0] else {
            panic!("a scalar")
        };
        assert_eq!(expr.value, "sum(rate(x[5m]))\n/ 2\n");
        assert_eq!(expr.style, ScalarStyle::Literal);
        assert_eq!(expr.at, At { line: 2, column: 6 });
        let (_, Node::Scalar(hold)) = &rule[1] else {
            panic!("a scalar")
        };
        assert_eq!(&text[hold.bytes.0..hold.bytes.1], "10m");
        let (_, Node::Scalar(q)) = &rule[2] else {
            panic!("a scalar")
        };
        assert_eq!(&text[q.bytes.0..q.bytes.1], "é0.25");
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        assert_eq!(
            parse("a: 1\nb: 2\na: 3\n").unwrap_err(),
            YamlError {
                line: 2,
                message: "key `a` is already set".into()
            }
        );
        assert!(parse("a: [1\n").is_err());
    }
}
