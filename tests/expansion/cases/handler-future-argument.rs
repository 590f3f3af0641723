#[timed_handler(future)]
fn login(user: String) -> LoginFuture {
    Box::pin(authenticate(user))
}
