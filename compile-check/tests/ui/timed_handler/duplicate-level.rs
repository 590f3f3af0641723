#[selftime::timed_handler(level = "debug", level = "info")]
fn checkout() {}

fn main() {
    checkout();
}
