#[selftime::external_call("legacy", until_wake)]
fn blocking_query() -> u32 {
    1
}

fn main() {
    blocking_query();
}
