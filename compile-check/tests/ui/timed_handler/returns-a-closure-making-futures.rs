use std::future::Future;

#[selftime::timed_handler]
fn login() -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = u32>>> {
    || Box::pin(async { 1 })
}

fn main() {
    drop(login());
}
