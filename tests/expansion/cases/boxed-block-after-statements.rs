// Statements before the boxed async block may return another future: the
// whole body runs in the builder closure, and whichever future it returns
// is measured.
#[timed_handler]
fn lookup(cache: &Cache, key: u32) -> Lookup<'_> {
    if let Some(value) = cache.get(key) {
        return Box::pin(async move { value });
    }
    Box::pin(async move { cache.fetch(key).await })
}
