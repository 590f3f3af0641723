#[selftime::timed_handler(future)]
async fn login() -> u32 {
    1
}

fn main() {
    drop(login());
}
