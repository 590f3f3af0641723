// An `async fn` whose value is itself lazy is refused too: the work the
// iterator does comes after the handler's end.
#[selftime::timed_handler]
async fn rows(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|i| i * 2)
}

fn main() {
    drop(rows(3));
}
