#[selftime::timed_handler(split, name = "checkout", split)]
fn checkout() {}

fn main() {
    checkout();
}
