//! Prometheus rules files, read from the YAML users deploy: groups of
//! recording and alerting rules, each expression parsed by `promql-parser`.
//!
//! A [`RuleFile`] keeps its text: the generator edits it in place (a range
//! or a `for:` rewritten where it stands), so that what it does not change
//! stays byte for byte.

use crate::duration::Dur;
use crate::yaml::{self, Node, Scalar};
use lrpar::{Lexeme, Lexer};
use promql_parser::parser::token::{T_DURATION, T_LEFT_BRACKET, T_NUMBER, T_RIGHT_BRACKET};
use promql_parser::parser::{Expr, FunctionArgs};
use saphyr_parser::ScalarStyle;
use std::fmt;
use std::time::Duration;

/// A rules file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    name: String,
    text: String,
    groups: Vec<Group>,
}

/// A rule group: its rules are evaluated in order.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    /// `interval:`, when the group sets one.
    pub interval: Option<Dur>,
    /// `limit:`, when the group sets one.
    pub limit: Option<u64>,
    pub rules: Vec<Rule>,
}

/// A recording rule or an alerting rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: Kind,
    /// The series it records, or the alert's name.
    pub name: String,
    /// `expr:`, parsed.
    pub expr: Expr,
    /// `expr:` as written.
    pub expr_text: String,
    /// `for:` (alerts only).
    pub hold: Option<Dur>,
    /// `keep_firing_for:` (alerts only).
    pub keep_firing_for: Option<Dur>,
    /// `labels:`, in file order.
    pub labels: Vec<(String, String)>,
    /// `annotations:` (alerts only), in file order.
    pub annotations: Vec<(String, String)>,
    places: Places,
}

/// Whether a rule records or alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Record,
    Alert,
}

/// Where a rule's editable values are in the file's text.
#[derive(Clone, Debug)]
struct Places {
    expr: Scalar,
    hold: Option<Scalar>,
    labels: Vec<Scalar>,
}

/// A rules file that cannot be read, or an edit that cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesError {
    /// The file, as it was named to [`RuleFile::parse`].
    pub file: String,
    /// 1-based; 0 when the error is about the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for RulesError {}

/// A byte range of a text: `[start, end)`.
pub(crate) type Bytes = (usize, usize);

/// A byte range of a file's text and what to write there instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) bytes: (usize, usize),
    pub(crate) text: String,
}

impl RuleFile {
    /// Reads the rules file `text`; `name` names it in errors.
    ///
    /// # Errors
    ///
    /// What Prometheus would refuse in it: YAML that is not a rules file,
    /// a key it does not know, an expression that does not parse, a
    /// duration it cannot read.
    pub fn parse(name: &str, text: &str) -> Result<Self, RulesError> {
        let error = |line: usize, message: String| RulesError {
            file: name.to_owned(),
            line,
            message,
        };
        let root = yaml::parse(text).map_err(|e| error(e.line + 1, e.message))?;
        let mut groups = Vec::new();
        let top = mapping(&root, "the file").map_err(|(l, m)| error(l, m))?;
        let mut seen_groups = false;
        for (key, value) in top {
            if key.value != "groups" {
                return Err(error(
                    key.at.line + 1,
                    format!("unknown key `{}`: a rules file has `groups:`", key.value),
                ));
            }
            seen_groups = true;
            let Node::Sequence(items, _) = value else {
                return Err(error(
                    value.at().line + 1,
                    format!("`groups:` is {}, not a list", value.kind()),
                ));
            };
            for item in items {
                let group = read_group(item).map_err(|(l, m)| error(l, m))?;
                if groups.iter().any(|g: &Group| g.name == group.name) {
                    return Err(error(
                        item.at().line + 1,
                        format!("group `{}` is defined twice", group.name),
                    ));
                }
                groups.push(group);
            }
        }
        if !seen_groups {
            return Err(error(0, "no `groups:`".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            text: text.to_owned(),
            groups,
        })
    }

    /// The name it was read under.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file, as it was read.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its groups, in file order.
    #[must_use]
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| &g.rules)
    }

    /// The rule that records `name`, or the alert named `name`; the first
    /// when several do.
    #[must_use]
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules().find(|r| r.name == name)
    }

    /// Every alerting rule, in file order.
    pub fn alerts(&self) -> impl Iterator<Item = &Rule> {
        self.rules().filter(|r| r.kind == Kind::Alert)
    }

    pub(crate) fn error(&self, line: usize, message: String) -> RulesError {
        RulesError {
            file: self.name.clone(),
            line,
            message,
        }
    }

    /// The text with `edits` made; overlapping edits are refused.
    pub(crate) fn edited(&self, mut edits: Vec<Edit>) -> Result<String, RulesError> {
        edits.sort_by_key(|e| e.bytes);
        let mut out = String::with_capacity(self.text.len());
        let mut from = 0;
        for edit in &edits {
            if edit.bytes.0 < from {
                return Err(self.error(0, "two edits overlap".into()));
            }
            out.push_str(&self.text[from..edit.bytes.0]);
            out.push_str(&edit.text);
            from = edit.bytes.1;
        }
        out.push_str(&self.text[from..]);
        Ok(out)
    }
}

impl Rule {
    /// The line (1-based) of its `expr:` value.
    #[must_use]
    pub fn line(&self) -> usize {
        self.places.expr.at.line + 1
    }

    /// Where its `for:` value is in the file's text.
    pub(crate) fn hold_bytes(&self) -> Option<(usize, usize)> {
        self.places.hold.as_ref().map(|s| s.bytes)
    }

    /// Where the value of its label `name` is in the file's text, and how
    /// it is quoted.
    pub(crate) fn label_place(&self, name: &str) -> Option<(&Scalar, &str)> {
        let index = self.labels.iter().position(|(k, _)| k == name)?;
        Some((&self.places.labels[index], self.labels[index].1.as_str()))
    }

    /// Each range of its expression (`[5m]`), in text order: the range and
    /// where its duration is in the file's text. Checked against the
    /// parsed expression: the lexer's `[duration]`s are its range
    /// selectors, one for one.
    pub(crate) fn ranges(&self, file: &RuleFile) -> Result<Vec<(Duration, Bytes)>, RulesError> {
        let fail = |what: String| file.error(self.line(), format!("{}: {what}", self.name));
        let tokens = tokens(&self.expr_text).map_err(&fail)?;
        let mut found = Vec::new();
        for window in tokens.windows(3) {
            if let [(T_LEFT_BRACKET, _), (T_DURATION, at), (T_RIGHT_BRACKET, _)] = window {
                let text = &self.expr_text[at.0..at.1];
                let range = promql_parser::util::parse_duration(text).map_err(&fail)?;
                found.push((range, self.file_bytes(file, *at)?));
            }
        }
        let mut parsed = Vec::new();
        matrix_ranges(&self.expr, &mut parsed);
        if parsed != found.iter().map(|(r, _)| *r).collect::<Vec<_>>() {
            return Err(fail(
                "its `[…]` durations are not exactly its range selectors' (a subquery?)".into(),
            ));
        }
        Ok(found)
    }

    /// The number `x` of an expression that is `vector(x)`, and where it
    /// is in the file's text.
    pub(crate) fn vector_number(
        &self,
        file: &RuleFile,
    ) -> Result<(f64, (usize, usize)), RulesError> {
        let fail = |what: String| file.error(self.line(), format!("{}: {what}", self.name));
        let value = match &self.expr {
            Expr::Call(call) if call.func.name == "vector" => match call.args.args.as_slice() {
                [arg] => match &**arg {
                    Expr::NumberLiteral(n) => Some(n.val),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| fail("not `vector(<number>)`".into()))?;
        let tokens = tokens(&self.expr_text).map_err(&fail)?;
        let numbers: Vec<_> = tokens.iter().filter(|(id, _)| *id == T_NUMBER).collect();
        let [(_, at)] = numbers.as_slice() else {
            return Err(fail("not `vector(<number>)`".into()));
        };
        Ok((value, self.file_bytes(file, *at)?))
    }

    /// Where bytes `at` of the expression's value are in the file's text.
    fn file_bytes(
        &self,
        file: &RuleFile,
        at: (usize, usize),
    ) -> Result<(usize, usize), RulesError> {
        let scalar = &self.places.expr;
        let fail = || {
            file.error(
                self.line(),
                format!(
                    "{}: its expression can be edited in place only when written plain on one line, \
                     quoted without escapes, or as a literal block (`|`)",
                    self.name
                ),
            )
        };
        let start = match scalar.style {
            ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                if file.text[scalar.bytes.0..scalar.bytes.1] != self.expr_text {
                    return Err(fail());
                }
                scalar.bytes.0 + at.0
            }
            ScalarStyle::Literal => {
                // Content line n is the file's line (first + n), less the
                // block's indentation.
                let before = &self.expr_text[..at.0];
                let line = scalar.at.line + before.matches('\n').count();
                let column = at.0 - before.rfind('\n').map_or(0, |i| i + 1);
                let line_start = file
                    .text
                    .split_inclusive('\n')
                    .take(line)
                    .map(str::len)
                    .sum::<usize>();
                line_start + scalar.at.column + column
            }
            ScalarStyle::Folded => return Err(fail()),
        };
        let end = start + (at.1 - at.0);
        if file.text.get(start..end) != Some(&self.expr_text[at.0..at.1]) {
            return Err(fail());
        }
        Ok((start, end))
    }
}

/// The expression's tokens: (token id, byte range).
fn tokens(expr: &str) -> Result<Vec<(u16, Bytes)>, String> {
    let lexer = promql_parser::parser::lexer(expr)?;
    lexer
        .iter()
        .map(|lexeme| {
            let lexeme = lexeme.map_err(|e| format!("cannot lex: {e:?}"))?;
            let span = lexeme.span();
            Ok((lexeme.tok_id(), (span.start(), span.end())))
        })
        .collect()
}

/// The ranges of `expr`'s range selectors, in text order.
fn matrix_ranges(expr: &Expr, out: &mut Vec<Duration>) {
    let args = |args: &FunctionArgs, out: &mut Vec<Duration>| {
        for arg in &args.args {
            matrix_ranges(arg, out);
        }
    };
    match expr {
        Expr::MatrixSelector(m) => out.push(m.range),
        Expr::Aggregate(a) => {
            if let Some(param) = &a.param {
                matrix_ranges(param, out);
            }
            matrix_ranges(&a.expr, out);
        }
        Expr::Unary(u) => matrix_ranges(&u.expr, out),
        Expr::Binary(b) => {
            matrix_ranges(&b.lhs, out);
            matrix_ranges(&b.rhs, out);
        }
        Expr::Paren(p) => matrix_ranges(&p.expr, out),
        Expr::Subquery(s) => matrix_ranges(&s.expr, out),
        Expr::Call(c) => args(&c.args, out),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::Extension(_) => {}
    }
}

type Fail = (usize, String);

fn mapping<'a>(node: &'a Node, what: &str) -> Result<&'a [(Scalar, Node)], Fail> {
    match node {
        Node::Mapping(pairs, _) => Ok(pairs),
        other => Err((
            other.at().line + 1,
            format!("{what} is {}, not a mapping", other.kind()),
        )),
    }
}

fn text<'a>(node: &'a Node, key: &Scalar) -> Result<&'a Scalar, Fail> {
    match node {
        Node::Scalar(s) => Ok(s),
        other => Err((
            other.at().line + 1,
            format!("`{}:` is {}, not a value", key.value, other.kind()),
        )),
    }
}

/// An empty value (`labels:` with nothing after it), which Prometheus
/// reads as an empty mapping or list.
fn is_null(node: &Node) -> bool {
    matches!(node, Node::Scalar(s) if s.style == ScalarStyle::Plain && matches!(s.value.as_str(), "" | "~" | "null"))
}

/// A duration as rules files write them; `0s` (or `0`) is none.
fn duration(scalar: &Scalar, key: &str) -> Result<Dur, Fail> {
    if matches!(scalar.value.as_str(), "0" | "0s") {
        return Ok(Dur::secs(0));
    }
    scalar
        .value
        .parse()
        .map_err(|e| (scalar.at.line + 1, format!("`{key}:` {e}")))
}

/// A mapping's pairs, and where each value is.
type Pairs = (Vec<(String, String)>, Vec<Scalar>);

fn pairs(node: &Node, key: &Scalar) -> Result<Pairs, Fail> {
    let mut out = Vec::new();
    let mut places = Vec::new();
    if is_null(node) {
        return Ok((out, places));
    }
    for (k, v) in mapping(node, &format!("`{}:`", key.value))? {
        let v = text(v, k)?;
        if out
            .iter()
            .any(|(name, _): &(String, String)| *name == k.value)
        {
            return Err((k.at.line + 1, format!("`{}` is set twice", k.value)));
        }
        out.push((k.value.clone(), v.value.clone()));
        places.push(v.clone());
    }
    Ok((out, places))
}

fn read_group(node: &Node) -> Result<Group, Fail> {
    let mut name = None;
    let mut interval = None;
    let mut limit = None;
    let mut rules = Vec::new();
    for (key, value) in mapping(node, "a group")? {
        match key.value.as_str() {
            "name" => name = Some(text(value, key)?.value.clone()),
            "interval" => interval = Some(duration(text(value, key)?, "interval")?),
            "limit" => {
                let v = text(value, key)?;
                limit = Some(v.value.parse().map_err(|_| {
                    (
                        v.at.line + 1,
                        format!("`limit: {}` is not a count", v.value),
                    )
                })?);
            }
            "rules" if is_null(value) => {}
            "rules" => {
                let Node::Sequence(items, _) = value else {
                    return Err((
                        value.at().line + 1,
                        format!("`rules:` is {}, not a list", value.kind()),
                    ));
                };
                for item in items {
                    rules.push(read_rule(item)?);
                }
            }
            other => {
                return Err((
                    key.at.line + 1,
                    format!("unknown key `{other}` in a group (name, interval, limit, rules)"),
                ));
            }
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or((node.at().line + 1, "a group without a `name:`".to_owned()))?;
    Ok(Group {
        name,
        interval,
        limit,
        rules,
    })
}

fn read_rule(node: &Node) -> Result<Rule, Fail> {
    let line = node.at().line + 1;
    let mut kind_name: Option<(Kind, String)> = None;
    let mut expr: Option<Scalar> = None;
    let mut hold: Option<Scalar> = None;
    let mut keep_firing_for = None;
    let mut labels = (Vec::new(), Vec::new());
    let mut annotations = Vec::new();
    for (key, value) in mapping(node, "a rule")? {
        match key.value.as_str() {
            "record" | "alert" => {
                let kind = if key.value == "record" {
                    Kind::Record
                } else {
                    Kind::Alert
                };
                if kind_name.is_some() {
                    return Err((line, "a rule has either `record:` or `alert:`, once".into()));
                }
                kind_name = Some((kind, text(value, key)?.value.clone()));
            }
            "expr" => expr = Some(text(value, key)?.clone()),
            "for" => hold = Some(text(value, key)?.clone()),
            "keep_firing_for" => {
                keep_firing_for = Some(duration(text(value, key)?, "keep_firing_for")?);
            }
            "labels" => labels = pairs(value, key)?,
            "annotations" => annotations = pairs(value, key)?.0,
            other => {
                return Err((
                    key.at.line + 1,
                    format!(
                        "unknown key `{other}` in a rule \
                         (record, alert, expr, for, keep_firing_for, labels, annotations)"
                    ),
                ));
            }
        }
    }
    let (kind, name) =
        kind_name.ok_or((line, "a rule without `record:` or `alert:`".to_owned()))?;
    if name.is_empty() {
        return Err((line, "a rule with an empty name".into()));
    }
    let expr = expr.ok_or((line, format!("{name}: no `expr:`")))?;
    if kind == Kind::Record
        && (hold.is_some() || keep_firing_for.is_some() || !annotations.is_empty())
    {
        return Err((
            line,
            format!("{name}: a recording rule has no `for:`, `keep_firing_for:` or `annotations:`"),
        ));
    }
    let parsed = promql_parser::parser::parse(&expr.value)
        .map_err(|e| (expr.at.line + 1, format!("{name}: {e}")))?;
    Ok(Rule {
        kind,
        name,
        expr: parsed,
        expr_text: expr.value.clone(),
        hold: hold.as_ref().map(|h| duration(h, "for")).transpose()?,
        keep_firing_for,
        labels: labels.0,
        annotations,
        places: Places {
            expr,
            hold,
            labels: labels.1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# A file.
groups:
  - name: g
    rules:
      - record: r
        expr: sum by (job) (rate(x[5m]))
      - alert: A
        expr: |
          r > on (job)
            sum by (job) (rate(y{a=\"[1m]\"}[1h30m]))
        for: 10m
        labels:
          severity: page
          le: \"0.25\"
      - record: t
        expr: vector(0.25)
";

    #[test]
    fn reads_groups_rules_and_where_their_values_are() {
        let file = RuleFile::parse("f.yml", FILE).unwrap();
        assert_eq!(file.groups().len(), 1);
        let alert = file.rule("A").unwrap();
        assert_eq!(alert.kind, Kind::Alert);
        assert_eq!(alert.hold, Some(Dur::mins(10)));
        assert_eq!(alert.labels[1], ("le".to_owned(), "0.25".to_owned()));
        let ranges = alert.ranges(&file).unwrap();
        assert_eq!(ranges.len(), 1, "the `[1m]` in a string is no range");
        assert_eq!(ranges[0].0, Duration::from_secs(5_400));
        assert_eq!(&FILE[ranges[0].1.0..ranges[0].1.1], "1h30m");
        let record = file.rule("r").unwrap();
        let ranges = record.ranges(&file).unwrap();
        assert_eq!(&FILE[ranges[0].1.0..ranges[0].1.1], "5m");
        let (x, at) = file.rule("t").unwrap().vector_number(&file).unwrap();
        assert!((x - 0.25).abs() < f64::EPSILON);
        assert_eq!(&FILE[at.0..at.1], "0.25");
        let edited = file
            .edited(vec![Edit {
                bytes: alert.hold_bytes().unwrap(),
                text: "7m".into(),
            }])
            .unwrap();
        assert_eq!(edited, FILE.replace("for: 10m", "for: 7m"));
    }

    #[test]
    fn empty_labels_and_rules_are_empty() {
        let file = RuleFile::parse(
            "f",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        labels:\n  - name: h\n    rules:\n",
        )
        .unwrap();
        assert!(file.rule("A").unwrap().labels.is_empty());
        assert!(file.groups()[1].rules.is_empty());
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for (text, message) in [
            (
                "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(\n",
                "f:5: r: ",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - record: r\n        exp: x\n",
                "f:5: unknown key `exp`",
            ),
            ("groups:\n  - rules: []\n", "f:2: a group without a `name:`"),
            ("rules: []\n", "f:1: unknown key `rules`"),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        for: 5\n",
                "f:6: `for:` `5` is not a duration",
            ),
            (
                "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
                "f:4: group `g` is defined twice",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: x\n        expr: y\n",
                "f:6: key `expr` is already set",
            ),
        ] {
            let error = RuleFile::parse("f", text).unwrap_err().to_string();
            assert!(error.starts_with(message), "{text}: {error}");
        }
    }
}
