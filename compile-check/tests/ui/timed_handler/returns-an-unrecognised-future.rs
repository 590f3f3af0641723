// A future under a name the attribute cannot recognise would be timed only
// while it is built: a warning (here denied) at the return type says what to
// write instead.
#![deny(deprecated)]

use std::future::{ready, Ready};

#[selftime::timed_handler]
fn lookup() -> Ready<u32> {
    ready(7)
}

fn main() {
    drop(lookup());
}
