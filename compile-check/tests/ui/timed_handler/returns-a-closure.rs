// A closure does its work when it is called, after the fn has returned.
#[selftime::timed_handler]
fn make_handler(base: u32) -> impl Fn(u32) -> u32 {
    move |n| base + n
}

fn main() {
    drop(make_handler(1));
}
