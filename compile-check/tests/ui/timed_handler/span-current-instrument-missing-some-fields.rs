// Some fields declared (bare names are empty fields, as `#[instrument]`
// reads them), two not: the error lists the two.
#[selftime::timed_handler(span = "current")]
#[tracing::instrument(
    skip(cart),
    fields(
        user = 7,
        total.duration_us,
        external.duration_us = tracing::field::Empty,
        internal.duration_us,
        external.calls,
        external.breakdown,
    )
)]
fn checkout(cart: u32) -> u32 {
    cart
}

fn main() {
    drop(checkout(1));
}
