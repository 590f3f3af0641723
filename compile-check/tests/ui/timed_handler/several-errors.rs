#[selftime::timed_handler(name = 42, level = "loud", bogus, span = "parent", level = "info")]
const fn checkout() -> u32 {
    1
}

fn main() {
    let _ = checkout();
}
