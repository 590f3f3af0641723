#[selftime::timed_handler(span = "current", span = "new")]
fn checkout() {}

fn main() {
    checkout();
}
