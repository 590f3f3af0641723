#[selftime::timed_handler(polls, name = "checkout", polls)]
fn checkout() {}

fn main() {
    checkout();
}
