#[selftime::timed_handler(level = "loud")]
fn checkout() {}

fn main() {
    checkout();
}
