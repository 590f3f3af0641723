#[timed_handler(
    name = "checkout.v2",
    level = "debug",
    crate = "::payments::selftime",
)]
async fn checkout_v2(cart: Cart) -> Receipt {
    Receipt::from(cart)
}
