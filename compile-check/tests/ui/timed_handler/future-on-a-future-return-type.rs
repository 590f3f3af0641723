use std::future::Future;
use std::pin::Pin;

#[selftime::timed_handler(future)]
fn login() -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async { 1 })
}

fn main() {
    drop(login());
}
