use std::future::Future;
use std::pin::Pin;

#[selftime::timed_handler]
fn login() -> Pin<Box<dyn Future<Output = u32> + Unpin>> {
    Box::pin(std::future::ready(1))
}

fn main() {
    drop(login());
}
