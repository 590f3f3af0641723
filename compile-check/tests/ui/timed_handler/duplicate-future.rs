use std::future::Future;
use std::pin::Pin;

type Login = Pin<Box<dyn Future<Output = u32> + Send>>;

#[selftime::timed_handler(future, name = "login", future)]
fn login() -> Login {
    Box::pin(async { 1 })
}

fn main() {
    drop(login());
}
