#[selftime::timed_handler(name = "checkout" level = "debug")]
fn checkout() {}

fn main() {
    checkout();
}
