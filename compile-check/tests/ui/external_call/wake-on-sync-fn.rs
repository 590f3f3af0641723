#[selftime::external_call("legacy", wake)]
fn blocking_query() -> u32 {
    1
}

fn main() {
    blocking_query();
}
