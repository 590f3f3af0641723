#[selftime::timed_handler("checkout")]
fn checkout() {}

fn main() {
    checkout();
}
