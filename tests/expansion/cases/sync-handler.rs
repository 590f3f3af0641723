#[timed_handler]
fn render(page: &Page) -> String {
    let header = templates::header(page);
    format!("{header}{}", page.body)
}
