#[selftime::timed_handler(future)]
fn login() {}

fn main() {
    login();
}
