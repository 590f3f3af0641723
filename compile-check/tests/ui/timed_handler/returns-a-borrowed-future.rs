use std::future::Future;
use std::pin::Pin;

#[selftime::timed_handler]
fn login<'a>(fut: Pin<&'a mut (dyn Future<Output = u32> + Send)>) -> Pin<&'a mut (dyn Future<Output = u32> + Send)> {
    fut
}

fn main() {}
