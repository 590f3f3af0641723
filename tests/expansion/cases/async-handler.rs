#[timed_handler]
pub async fn checkout(cart: Cart) -> Receipt {
    let total = prices::total(&cart).await;
    Receipt { total }
}
