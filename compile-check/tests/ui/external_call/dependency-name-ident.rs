#[selftime::external_call(redis)]
fn get() {}

fn main() {
    get();
}
