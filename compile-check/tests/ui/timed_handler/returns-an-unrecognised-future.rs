// A future under a name the attribute cannot recognise would be timed only
// while it is built: an error at the return type says what to write instead,
// and `allow(deprecated)` does not silence it.
#![allow(deprecated)]

use std::future::{ready, Ready};

#[selftime::timed_handler]
fn lookup() -> Ready<u32> {
    ready(7)
}

fn main() {
    drop(lookup());
}
