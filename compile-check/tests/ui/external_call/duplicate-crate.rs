#[selftime::external_call("redis", crate = "::selftime", crate = "::selftime")]
fn get() {}

fn main() {
    get();
}
