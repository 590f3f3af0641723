#[selftime::external_call("")]
fn get() {}

fn main() {
    get();
}
