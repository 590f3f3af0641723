#[selftime::external_call("redis", timeout = "1s")]
fn get() {}

fn main() {
    get();
}
