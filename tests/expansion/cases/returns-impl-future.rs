#[timed_handler]
fn fetch(id: u64) -> impl Future<Output = Option<Item>> + Send {
    let key = id.to_string();
    async move { cache::get(&key).await }
}
