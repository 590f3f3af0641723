#[selftime::external_call("redis", "cache")]
fn get() {}

fn main() {
    get();
}
