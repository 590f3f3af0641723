// An `impl IntoFuture` is made into a future and run when the caller awaits
// it, after the fn has returned: measured as a plain fn it would read 0 µs.
use std::future::IntoFuture;

#[selftime::timed_handler]
fn login() -> impl IntoFuture<Output = u32> {
    async { 1 }
}

fn main() {
    drop(login());
}
