#[selftime::timed_handler(crate = "selftime<u8>")]
fn checkout() {}

fn main() {
    checkout();
}
