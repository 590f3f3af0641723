// A future of the user's own, under its own name, would be timed only while
// it is built: an error, which no lint level silences.
#![allow(warnings)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

struct Lookup;

impl Future for Lookup {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(7)
    }
}

#[selftime::external_call("legacy")]
fn lookup() -> Lookup {
    Lookup
}

fn main() {
    drop(lookup());
}
