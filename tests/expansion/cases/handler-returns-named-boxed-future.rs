#[timed_handler]
fn login(user: &str) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let fut = authenticate(user.to_owned());
    Box::pin(fut)
}
