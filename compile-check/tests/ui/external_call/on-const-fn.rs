#[selftime::external_call("redis")]
const fn get() -> u32 {
    1
}

fn main() {
    let _ = get();
}
