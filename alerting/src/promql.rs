//! The part of PromQL that selftime's rules are written in, as data: one
//! expression tree that renders to the text Prometheus reads (the rules
//! file) and that the built-in evaluator runs (`crate::eval`).
//!
//! The subset: instant selectors with `=`, `!=` and `=~"a|b"` matchers,
//! `rate(selector[window])`, `sum by` / `max by`, `histogram_quantile`,
//! `vector(x)`, number literals, parentheses, and binary operators with
//! `on (…)` and `group_left (…)`. Recording rules add static labels of their
//! own (`labels:`).

use crate::duration::Dur;
use std::fmt;

/// A label matcher of an instant selector.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// `label="value"`
    Eq(String, String),
    /// `label!="value"`
    Ne(String, String),
    /// `label=~"a|b|c"`: one of these values, exactly.
    OneOf(String, Vec<String>),
}

/// `metric{matchers}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Gt,
    Ge,
    Lt,
    And,
    Or,
    Unless,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::And => "and",
            Self::Or => "or",
            Self::Unless => "unless",
        }
    }

    /// PromQL's precedence, higher binds tighter.
    fn precedence(self) -> u8 {
        match self {
            Self::Mul | Self::Div => 5,
            Self::Add | Self::Sub => 4,
            Self::Gt | Self::Ge | Self::Lt => 3,
            Self::And | Self::Unless => 2,
            Self::Or => 1,
        }
    }

    /// Arithmetic drops the metric name; comparisons and set operators keep it.
    pub(crate) fn is_arithmetic(self) -> bool {
        matches!(self, Self::Add | Self::Sub | Self::Mul | Self::Div)
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }
}

/// How the two sides of a binary operator between vectors are matched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matching {
    /// `on (labels)`: match on these labels only; `None` matches on all
    /// labels but the metric name.
    pub on: Option<Vec<String>>,
    /// `group_left (labels)`: many-to-one, copying these labels from the
    /// right-hand side; `None` is one-to-one.
    pub group_left: Option<Vec<String>>,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// An instant vector selector.
    Select(Selector),
    /// `rate(selector[window])`.
    Rate(Selector, Dur),
    /// `sum by (labels) (expr)`.
    SumBy(Vec<String>, Box<Expr>),
    /// `max by (labels) (expr)`.
    MaxBy(Vec<String>, Box<Expr>),
    /// `histogram_quantile(q, expr)`.
    HistogramQuantile(f64, Box<Expr>),
    /// `vector(x)`.
    Vector(f64),
    /// `(expr)`: parentheses for the reader, where precedence needs none.
    Group(Box<Expr>),
    /// A binary operator.
    Binary {
        op: Op,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        matching: Matching,
    },
}

/// `metric{matchers}`, for building expressions.
#[must_use]
pub fn select(metric: &str, matchers: &[Matcher]) -> Expr {
    Expr::Select(selector(metric, matchers))
}

/// `metric` alone, for building expressions.
#[must_use]
pub fn series(metric: &str) -> Expr {
    select(metric, &[])
}

/// A selector, for `rate`.
#[must_use]
pub fn selector(metric: &str, matchers: &[Matcher]) -> Selector {
    Selector {
        metric: metric.to_owned(),
        matchers: matchers.to_vec(),
    }
}

/// `label="value"`.
#[must_use]
pub fn eq(label: &str, value: &str) -> Matcher {
    Matcher::Eq(label.to_owned(), value.to_owned())
}

/// `label!="value"`.
#[must_use]
pub fn ne(label: &str, value: &str) -> Matcher {
    Matcher::Ne(label.to_owned(), value.to_owned())
}

/// `label=~"a|b"`.
#[must_use]
pub fn one_of(label: &str, values: &[&str]) -> Matcher {
    Matcher::OneOf(
        label.to_owned(),
        values.iter().map(|&v| v.to_owned()).collect(),
    )
}

/// `rate(selector[window])`.
#[must_use]
pub fn rate(selector: Selector, window: Dur) -> Expr {
    Expr::Rate(selector, window)
}

/// `sum by (labels) (expr)`.
#[must_use]
pub fn sum_by(labels: &[&str], expr: Expr) -> Expr {
    Expr::SumBy(owned(labels), Box::new(expr))
}

/// `max by (labels) (expr)`.
#[must_use]
pub fn max_by(labels: &[&str], expr: Expr) -> Expr {
    Expr::MaxBy(owned(labels), Box::new(expr))
}

/// `histogram_quantile(q, expr)`.
#[must_use]
pub fn histogram_quantile(q: f64, expr: Expr) -> Expr {
    Expr::HistogramQuantile(q, Box::new(expr))
}

/// `vector(x)`.
#[must_use]
pub fn vector(x: f64) -> Expr {
    Expr::Vector(x)
}

/// A number literal.
#[must_use]
pub fn num(x: f64) -> Expr {
    Expr::Number(x)
}

fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|&l| l.to_owned()).collect()
}

impl Expr {
    /// `self op rhs`, matching on all labels but the name.
    #[must_use]
    pub fn op(self, op: Op, rhs: Self) -> Self {
        Self::Binary {
            op,
            lhs: Box::new(self),
            rhs: Box::new(rhs),
            matching: Matching::default(),
        }
    }

    /// `self op on (labels) rhs`.
    #[must_use]
    pub fn op_on(self, op: Op, on: &[&str], rhs: Self) -> Self {
        Self::Binary {
            op,
            lhs: Box::new(self),
            rhs: Box::new(rhs),
            matching: Matching {
                on: Some(owned(on)),
                group_left: None,
            },
        }
    }

    /// `self op on (labels) group_left (extra) rhs`.
    #[must_use]
    pub fn op_group_left(self, op: Op, on: &[&str], extra: &[&str], rhs: Self) -> Self {
        Self::Binary {
            op,
            lhs: Box::new(self),
            rhs: Box::new(rhs),
            matching: Matching {
                on: Some(owned(on)),
                group_left: Some(owned(extra)),
            },
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Self::Binary { op, .. } => op.precedence(),
            _ => u8::MAX,
        }
    }

    /// A binary expression's operands, each wrapped in [`Expr::Group`]
    /// where precedence needs parentheses (left-associative: a left operand
    /// of the same precedence needs none, a right one does).
    ///
    /// # Panics
    ///
    /// On anything but [`Expr::Binary`].
    pub(crate) fn operands_parenthesized(&self) -> (Self, Self) {
        let Self::Binary { op, lhs, rhs, .. } = self else {
            panic!("operands_parenthesized: not a binary expression");
        };
        let mine = op.precedence();
        let left = if lhs.precedence() < mine {
            Self::Group(lhs.clone())
        } else {
            (**lhs).clone()
        };
        let right = if rhs.precedence() <= mine {
            Self::Group(rhs.clone())
        } else {
            (**rhs).clone()
        };
        (left, right)
    }
}

/// A number as PromQL reads it back exactly: Rust's shortest round-trip
/// form, which is valid PromQL for every finite value.
pub(crate) fn number(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if x.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{x}")
    }
}

/// A string literal in double quotes, escaped the way PromQL reads it.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn labels(list: &[String]) -> String {
    list.join(", ")
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eq(l, v) => write!(f, "{l}={}", quoted(v)),
            Self::Ne(l, v) => write!(f, "{l}!={}", quoted(v)),
            // Values are literal names: nothing in them is a regex operator
            // (checked where the rules are built).
            Self::OneOf(l, vs) => write!(f, "{l}=~{}", quoted(&vs.join("|"))),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.matchers.is_empty() {
            let list: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
            write!(f, "{{{}}}", list.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(x) => f.write_str(&number(*x)),
            Self::Group(e) => write!(f, "({e})"),
            Self::Select(s) => write!(f, "{s}"),
            Self::Rate(s, w) => write!(f, "rate({s}[{w}])"),
            Self::SumBy(by, e) => write!(f, "sum by ({}) ({e})", labels(by)),
            Self::MaxBy(by, e) => write!(f, "max by ({}) ({e})", labels(by)),
            Self::HistogramQuantile(q, e) => write!(f, "histogram_quantile({}, {e})", number(*q)),
            Self::Vector(x) => write!(f, "vector({})", number(*x)),
            Self::Binary { op, matching, .. } => {
                let (left, right) = self.operands_parenthesized();
                write!(f, "{left} {}", op.symbol())?;
                if let Some(on) = &matching.on {
                    write!(f, " on ({})", labels(on))?;
                }
                if let Some(extra) = &matching.group_left {
                    write!(f, " group_left ({})", labels(extra))?;
                }
                write!(f, " {right}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_prometheus_reads_it() {
        let buckets = rate(
            selector(
                "selftime_internal_seconds_bucket",
                &[ne("dependency", "all")],
            ),
            Dur::mins(5),
        );
        let p99 = histogram_quantile(0.99, sum_by(&["job", "handler", "le"], buckets));
        assert_eq!(
            p99.to_string(),
            "histogram_quantile(0.99, sum by (job, handler, le) (rate(selftime_internal_seconds_bucket{dependency!=\"all\"}[5m])))"
        );
        let gated = series("a").op(Op::Gt, series("b")).op_on(
            Op::And,
            &["job"],
            series("c").op(Op::Ge, num(0.1)),
        );
        assert_eq!(gated.to_string(), "a > b and on (job) c >= 0.1");
        let nested = num(1.0).op(Op::Sub, series("x").op(Op::Div, series("y")));
        assert_eq!(nested.to_string(), "1 - x / y");
        let grouped = num(1.0).op(Op::Sub, series("x")).op(Op::Div, series("y"));
        assert_eq!(grouped.to_string(), "(1 - x) / y");
        let right = series("x").op(Op::Sub, series("y").op(Op::Sub, series("z")));
        assert_eq!(right.to_string(), "x - (y - z)");
        let grouped = vector(0.99).op_group_left(Op::Add, &[], &["le"], series("t"));
        assert_eq!(
            grouped.to_string(),
            "vector(0.99) + on () group_left (le) t"
        );
        assert_eq!(
            select("r", &[one_of("outcome", &["error", "panic"])]).to_string(),
            "r{outcome=~\"error|panic\"}"
        );
        assert_eq!(quoted("GET /a/{id} \"x\""), "\"GET /a/{id} \\\"x\\\"\"");
    }
}
