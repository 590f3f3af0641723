#[selftime::timed_handler(target = "payments")]
fn checkout() {}

fn main() {
    checkout();
}
