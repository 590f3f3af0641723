// `span = "current"`: no span is opened; the figures go to the one entered.
#[timed_handler(span = "current")]
async fn checkout(cart: Cart) -> Receipt {
    Receipt::from(cart)
}
