#[timed_handler]
fn load(&self, key: u32) -> BoxFuture<'_, Result<u32, Error>> {
    self.backend.load(key).boxed()
}
