// An iterator does its work when it is consumed, after the fn has returned.
#[selftime::timed_handler]
fn squares(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|i| i * i)
}

fn main() {
    drop(squares(3));
}
