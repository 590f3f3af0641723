use std::future::Future;
use std::pin::Pin;

type Get = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

#[selftime::external_call("redis", future, future)]
fn get() -> Get {
    Box::pin(async { None })
}

fn main() {
    drop(get());
}
