#[selftime::external_call(name = "redis")]
fn get() {}

fn main() {
    get();
}
