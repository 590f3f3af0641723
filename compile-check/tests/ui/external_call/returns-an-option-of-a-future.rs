use futures_alias::BoxFuture;

mod futures_alias {
    pub type BoxFuture<'a, T> =
        std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

#[selftime::external_call("redis", until_wake)]
fn get(cached: bool) -> Option<BoxFuture<'static, u32>> {
    (!cached).then(|| -> BoxFuture<'static, u32> { Box::pin(async { 1 }) })
}

fn main() {
    drop(get(false));
}
