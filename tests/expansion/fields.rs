//! The span fields `#[timed_handler(span = "current")]` asks of an
//! `#[instrument]` below it are the ones the runtime records,
//! `selftime::FIELDS` (and `SPLIT_FIELDS` with `split`): the macros cannot
//! depend on the runtime, so they keep a copy of the list, and this is what
//! keeps the copy true. Checked through the macro itself: every field the
//! runtime names is asked for, and declaring the runtime's list is enough.

use super::{Which, tokens};

/// `#[timed_handler(args)]` on a fn under `#[tracing::instrument(fields(…))]`
/// declaring `fields`: the compile errors it answers with, as text.
fn errors(args: &str, fields: &[&str]) -> String {
    let item = format!(
        "#[tracing::instrument(fields({}))] fn checkout() {{}}",
        fields.join(", "),
    );
    let out = Which::TimedHandler.expand(tokens(args), tokens(&item));
    let file: syn::File = syn::parse2(out.clone())
        .unwrap_or_else(|e| panic!("the output does not parse: {e}\n{out}"));
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "compile_error") =>
            {
                Some(m.mac.tokens.to_string())
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(args: &str, runtime: &[&str]) {
    assert_eq!(
        errors(args, runtime),
        "",
        "`{args}`: declaring the runtime's fields should be enough"
    );
    for (i, field) in runtime.iter().enumerate() {
        let mut fewer = runtime.to_vec();
        fewer.remove(i);
        let errors = errors(args, &fewer);
        assert!(
            errors.contains(&format!("`{field}`")),
            "`{args}`: without `{field}` the macro should ask for it, said {errors:?}"
        );
    }
}

#[test]
fn the_macro_asks_for_exactly_the_fields_the_runtime_records() {
    check("span = \"current\"", &selftime::FIELDS);
    let split: Vec<&str> = selftime::FIELDS
        .iter()
        .chain(&selftime::SPLIT_FIELDS)
        .copied()
        .collect();
    check("span = \"current\", split", &split);
}

#[test]
fn without_span_current_the_instrument_is_not_looked_at() {
    assert_eq!(errors("", &[]), "");
    assert_eq!(errors("span = \"new\"", &["user"]), "");
}
