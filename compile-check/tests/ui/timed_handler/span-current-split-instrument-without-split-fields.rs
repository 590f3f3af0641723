// With `split`, the three split fields are recorded too, so they must be
// declared as well.
use tracing::instrument;

#[selftime::timed_handler(span = "current", split)]
#[instrument(fields(
    total.duration_us,
    external.duration_us,
    internal.duration_us,
    external.calls,
    external.breakdown,
    outcome,
    internal.backlog_us,
    external.between_us,
))]
fn checkout(cart: u32) -> u32 {
    cart
}

fn main() {
    drop(checkout(1));
}
