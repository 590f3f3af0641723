#[selftime::timed_handler(span = "current", level = "debug")]
fn checkout() {}

fn main() {
    checkout();
}
