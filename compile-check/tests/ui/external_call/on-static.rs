#[selftime::external_call("redis")]
static URL: &str = "redis://";

fn main() {
    let _ = URL;
}
