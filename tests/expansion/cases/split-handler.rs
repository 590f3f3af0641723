// `split`: the span declares the three split fields, the handler splits internal time.
#[timed_handler(split, name = "checkout")]
async fn checkout(cart: u32) -> u32 {
    cart
}
