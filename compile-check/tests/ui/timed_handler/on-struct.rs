#[selftime::timed_handler]
struct Checkout {
    cart: u32,
}

fn main() {
    let checkout = Checkout { cart: 1 };
    let _ = checkout.cart;
}
