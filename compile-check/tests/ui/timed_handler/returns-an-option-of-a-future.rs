use std::future::Future;

#[selftime::timed_handler]
fn login(cached: bool) -> Option<impl Future<Output = u32>> {
    (!cached).then(|| async { 1 })
}

fn main() {
    drop(login(false));
}
