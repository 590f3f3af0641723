#[selftime::external_call(redis, "", timeout = "1s", crate = "a b")]
struct Redis;

fn main() {
    let _ = Redis;
}
