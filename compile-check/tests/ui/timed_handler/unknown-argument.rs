#[selftime::timed_handler(skip_all)]
fn checkout() {}

fn main() {
    checkout();
}
