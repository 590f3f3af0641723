#[timed_handler]
fn cached(key: u32) -> impl Future<Output = Option<u32>> + Unpin {
    std::future::ready(CACHE.get(key))
}
