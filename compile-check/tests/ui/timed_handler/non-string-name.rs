#[selftime::timed_handler(name = 42)]
fn checkout() {}

fn main() {
    checkout();
}
