#[selftime::timed_handler(name = "checkout", name = "pay")]
fn checkout() {}

fn main() {
    checkout();
}
