#[selftime::timed_handler(span = "parent")]
fn checkout() {}

fn main() {
    checkout();
}
