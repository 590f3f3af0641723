#[selftime::timed_handler(name = )]
fn checkout() {}

fn main() {
    checkout();
}
