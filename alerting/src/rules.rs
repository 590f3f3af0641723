//! Rule files as data, and the YAML Prometheus reads.

use crate::duration::Dur;
use crate::promql::{quoted, Expr};
use std::fmt::Write as _;

/// A rules file: groups of recording and alerting rules.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleFile {
    /// Comment lines at the top of the file (without `# `).
    pub header: Vec<String>,
    pub groups: Vec<Group>,
}

/// A rule group: Prometheus evaluates its rules in order, and the groups of
/// a file in order here (the built-in evaluator and `promtool test rules`).
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    /// Comment lines above the group.
    pub comment: Vec<String>,
    pub rules: Vec<Rule>,
}

/// A recording or an alerting rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Record(Record),
    Alert(Alert),
}

/// `record: name` / `expr: …`.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub comment: Vec<String>,
    pub name: String,
    pub expr: Expr,
    /// Labels set on every series it records (`labels:`).
    pub labels: Vec<(String, String)>,
}

/// `alert: name` / `expr: …` / `for: …` / `labels` / `annotations`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub comment: Vec<String>,
    pub name: String,
    pub expr: Expr,
    /// How long the condition must hold before the alert fires.
    pub hold: Option<Dur>,
    /// Static labels (no templates).
    pub labels: Vec<(String, String)>,
    /// Annotations; templates are Prometheus's business.
    pub annotations: Vec<(String, String)>,
}

impl Rule {
    /// The name it records, or the alert's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Record(r) => &r.name,
            Self::Alert(a) => &a.name,
        }
    }
}

impl RuleFile {
    /// Every alerting rule, in file order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| match r {
                Rule::Alert(a) => Some(a),
                Rule::Record(_) => None,
            })
    }

    /// The file as Prometheus reads it.
    #[must_use]
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        comment(&mut out, "", &self.header);
        if !self.header.is_empty() {
            out.push('\n');
        }
        out.push_str("groups:\n");
        for (index, group) in self.groups.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            comment(&mut out, "  ", &group.comment);
            let _ = writeln!(out, "  - name: {}", group.name);
            out.push_str("    rules:\n");
            for (index, rule) in group.rules.iter().enumerate() {
                match rule {
                    Rule::Record(r) => {
                        if index > 0 && !r.comment.is_empty() {
                            out.push('\n');
                        }
                        comment(&mut out, "      ", &r.comment);
                        let _ = writeln!(out, "      - record: {}", r.name);
                        expr(&mut out, &r.expr);
                        map(&mut out, "labels", &r.labels);
                    }
                    Rule::Alert(a) => {
                        if index > 0 {
                            out.push('\n');
                        }
                        comment(&mut out, "      ", &a.comment);
                        let _ = writeln!(out, "      - alert: {}", a.name);
                        expr(&mut out, &a.expr);
                        if let Some(hold) = a.hold {
                            let _ = writeln!(out, "        for: {hold}");
                        }
                        map(&mut out, "labels", &a.labels);
                        map(&mut out, "annotations", &a.annotations);
                    }
                }
            }
        }
        out
    }
}

fn comment(out: &mut String, indent: &str, lines: &[String]) {
    for line in lines {
        if line.is_empty() {
            let _ = writeln!(out, "{indent}#");
        } else {
            let _ = writeln!(out, "{indent}# {line}");
        }
    }
}

fn map(out: &mut String, key: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(out, "        {key}:");
    for (k, v) in pairs {
        let _ = writeln!(out, "          {k}: {}", yaml_string(v));
    }
}

/// How wide an expression may print on one line of the YAML block.
const WIDTH: usize = 88;

/// `expr:` on one line when it is short and plain, else as a block,
/// broken where it would run past [`WIDTH`].
fn expr(out: &mut String, expr: &Expr) {
    let flat = expr.to_string();
    if flat.len() <= WIDTH && plain_yaml(&flat) {
        let _ = writeln!(out, "        expr: {flat}");
        return;
    }
    out.push_str("        expr: |\n");
    for line in pretty(expr, 0) {
        let _ = writeln!(out, "          {line}");
    }
}

/// `expr` as indented lines: on one line if it fits, else broken at its
/// operators (the operator on a line of its own, the operands around it)
/// and inside its parentheses.
fn pretty(expr: &Expr, indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let flat = expr.to_string();
    if indent + flat.len() <= WIDTH {
        return vec![format!("{pad}{flat}")];
    }
    let wrapped = |open: String, inner: &Expr| {
        let mut lines = vec![format!("{pad}{open}")];
        lines.extend(pretty(inner, indent + 2));
        lines.push(format!("{pad})"));
        lines
    };
    match expr {
        Expr::Group(inner) => wrapped("(".into(), inner),
        Expr::SumBy(by, inner) => wrapped(format!("sum by ({}) (", by.join(", ")), inner),
        Expr::MaxBy(by, inner) => wrapped(format!("max by ({}) (", by.join(", ")), inner),
        Expr::HistogramQuantile(q, inner) => wrapped(
            format!("histogram_quantile({},", crate::promql::number(*q)),
            inner,
        ),
        Expr::Binary { op, matching, .. } => {
            let (left, right) = expr.operands_parenthesized();
            let mut lines = pretty(&left, indent);
            // `short op (` … `)`: a short left operand keeps the operator
            // and the opening parenthesis of a long right one on its line.
            if let (true, Expr::Group(inner)) = (
                lines.len() == 1 && !op.is_set() && matching.on.is_none(),
                &right,
            ) {
                let line = format!("{} {} (", lines[0], op.symbol());
                if line.len() <= WIDTH {
                    let mut lines = vec![line];
                    lines.extend(pretty(inner, indent + 2));
                    lines.push(format!("{pad})"));
                    return lines;
                }
            }
            let mut operator = format!("{pad}{}", op.symbol());
            if let Some(on) = &matching.on {
                let _ = write!(operator, " on ({})", on.join(", "));
            }
            if let Some(extra) = &matching.group_left {
                let _ = write!(operator, " group_left ({})", extra.join(", "));
            }
            let rest = right.to_string();
            if operator.len() + 1 + rest.len() <= WIDTH && !op.is_set() {
                lines.push(format!("{operator} {rest}"));
            } else {
                lines.push(operator);
                lines.extend(pretty(&right, indent));
            }
            lines
        }
        _ => vec![format!("{pad}{flat}")],
    }
}

/// Text YAML reads back unchanged as a plain scalar.
fn plain_yaml(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| "{[&*!|>'\"%@`#,?:-".contains(c) || c.is_whitespace())
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(|c: char| c == ':' || c.is_whitespace())
}

/// A label or annotation value: plain when it is a simple word (that YAML
/// cannot read as a number or a boolean), else a double-quoted YAML string.
fn yaml_string(text: &str) -> String {
    if text.starts_with(|c: char| c.is_ascii_alphabetic())
        && !matches!(
            text,
            "true" | "false" | "yes" | "no" | "on" | "off" | "null"
        )
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        text.to_owned()
    } else {
        // YAML's double-quoted escapes for `"` and `\` are those of PromQL.
        quoted(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::{num, series, vector, Op};

    #[test]
    fn yaml_puts_top_level_set_operators_on_lines_of_their_own() {
        let file = RuleFile {
            header: vec!["A file.".into(), String::new(), "More.".into()],
            groups: vec![Group {
                name: "g".into(),
                comment: vec![],
                rules: vec![
                    Rule::Record(Record {
                        comment: vec![],
                        name: "t:default".into(),
                        expr: vector(0.25),
                        labels: vec![("le".into(), "0.25".into())],
                    }),
                    Rule::Alert(Alert {
                        comment: vec!["Why.".into()],
                        name: "Hi".into(),
                        expr: series("a_long_metric_name_to_break_the_line:with_a_suffix")
                            .op(Op::Gt, num(1.0))
                            .op_on(
                                Op::And,
                                &["job"],
                                series("b_long_metric_name_to_break_the_line").op(Op::Ge, num(0.1)),
                            ),
                        hold: Some(Dur::mins(10)),
                        labels: vec![("severity".into(), "page".into())],
                        annotations: vec![("summary".into(), "{{ $labels.job }}: \"x\"".into())],
                    }),
                ],
            }],
        };
        assert_eq!(
            file.to_yaml(),
            "# A file.\n#\n# More.\n\ngroups:\n  - name: g\n    rules:\n      - record: t:default\n        expr: vector(0.25)\n        labels:\n          le: \"0.25\"\n\n      # Why.\n      - alert: Hi\n        expr: |\n          a_long_metric_name_to_break_the_line:with_a_suffix > 1\n          and on (job)\n          b_long_metric_name_to_break_the_line >= 0.1\n        for: 10m\n        labels:\n          severity: page\n        annotations:\n          summary: \"{{ $labels.job }}: \\\"x\\\"\"\n"
        );
    }
}
