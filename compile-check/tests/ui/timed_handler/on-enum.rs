#[selftime::timed_handler]
enum Route {
    Checkout,
}

fn main() {
    let _ = Route::Checkout;
}
