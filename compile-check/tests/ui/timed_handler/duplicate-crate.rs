#[selftime::timed_handler(crate = "::selftime", crate = "::selftime")]
fn checkout() {}

fn main() {
    checkout();
}
