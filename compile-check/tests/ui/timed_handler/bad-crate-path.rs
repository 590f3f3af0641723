#[selftime::timed_handler(crate = "self time")]
fn checkout() {}

fn main() {
    checkout();
}
