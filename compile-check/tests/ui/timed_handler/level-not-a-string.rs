#[selftime::timed_handler(level = tracing::Level::DEBUG)]
fn checkout() {}

fn main() {
    checkout();
}
