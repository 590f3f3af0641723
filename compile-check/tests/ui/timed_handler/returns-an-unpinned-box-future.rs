use std::future::Future;

#[selftime::timed_handler]
fn login() -> Box<dyn Future<Output = u32> + Unpin> {
    Box::new(std::future::ready(1))
}

fn main() {
    drop(login());
}
