#[external_call("redis", until_wake)]
fn get<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
    if let Some(hit) = self.local.get(key) {
        return Box::pin(std::future::ready(Some(hit.clone())));
    }
    Box::pin(self.conn.get(key))
}
