use std::future::{ready, Ready};

// `future` says the return type is a boxed future; `Ready<u32>` is a future,
// but not one that the measured future can be boxed into.
#[selftime::timed_handler(future)]
fn login() -> Ready<u32> {
    ready(1)
}

fn main() {
    drop(login());
}
