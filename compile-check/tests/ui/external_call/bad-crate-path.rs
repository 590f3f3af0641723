#[selftime::external_call("redis", crate = "::selftime::")]
fn get() {}

fn main() {
    get();
}
