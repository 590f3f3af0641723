#[selftime::external_call("redis", future)]
fn set() {}

fn main() {
    set();
}
