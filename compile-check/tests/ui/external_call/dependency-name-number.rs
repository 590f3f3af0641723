#[selftime::external_call(42)]
fn get() {}

fn main() {
    get();
}
