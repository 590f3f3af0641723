#[selftime::external_call(b"redis")]
fn get() {}

fn main() {
    get();
}
