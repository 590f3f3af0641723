// A stream does its work when it is polled, after the fn has returned. The
// trait is known by the last segment of its path, whichever crate it is
// from (here a stand-in for `futures_core`).
mod futures_core {
    pub trait Stream {
        type Item;
    }
}

struct Numbers;

impl futures_core::Stream for Numbers {
    type Item = u32;
}

#[selftime::timed_handler]
fn numbers() -> impl futures_core::Stream<Item = u32> {
    Numbers
}

fn main() {
    let _ = numbers();
}
