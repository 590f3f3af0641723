// A stream does its work when it is polled, after the fn has returned; an
// `async fn` whose value is a stream is refused as well.
trait Stream {
    type Item;
}

struct Rows;

impl Stream for Rows {
    type Item = u32;
}

#[selftime::external_call("db")]
async fn query() -> impl Stream<Item = u32> {
    Rows
}

fn main() {
    drop(query());
}
