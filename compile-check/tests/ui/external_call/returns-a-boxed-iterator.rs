// A boxed iterator is as lazy as an `impl Iterator`.
#[selftime::external_call("db")]
fn rows() -> Box<dyn Iterator<Item = u32> + Send> {
    Box::new((0..3).map(|i| i * 2))
}

fn main() {
    drop(rows());
}
